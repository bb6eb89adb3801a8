"""Our own HTTP surface: bad input, cross-site requests, headers, the page and its config."""

from __future__ import annotations

import json
import re
from importlib.metadata import version

import pytest
from yarl import URL

from tests.helpers import OFFER, SDP


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ("hello", SDP, 400, "bad_sdp"),
        ("v=0\r\nno audio here\r\n", SDP, 400, "bad_sdp"),
        (b"v=0\xff\xfe m=audio", SDP, 400, "bad_sdp"),
        (OFFER, {"Content-Type": "text/plain"}, 415, "not_sdp"),
        (OFFER + "a=x\r\n" * 20000, SDP, 413, "too_large"),
    ],
    ids=["not-sdp", "no-audio", "not-utf8", "wrong-type", "too-large"],
)
async def test_bad_offers_get_json_errors(client, fake, body, headers, status, code):
    response = await client.post("/api/call", data=body, headers=headers)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code
    assert fake.recorded("calls") == []
    assert (await client.get("/healthz")).status == 200


async def test_unknown_api_paths_and_methods_are_json(client):
    missing = await client.get("/api/nope")
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    wrong = await client.get("/api/call")
    assert wrong.status == 405 and (await wrong.json())["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_cross_site_posts_are_refused(make_client, fake, headers):
    client = await make_client(sdp="browser")
    for path in ("/api/token", "/api/call"):
        response = await client.post(path, data=OFFER, headers={**SDP, **headers})
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "cross_origin"
    assert fake.requests == []


async def test_same_origin_posts_are_served(make_client):
    client = await make_client(sdp="browser")
    origin = str(client.make_url("/")).rstrip("/")
    response = await client.post("/api/token", headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert response.status == 200


async def test_page_has_security_headers_and_inline_config(client):
    response = await client.get("/")
    assert response.status == 200
    headers = response.headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "microphone=(self)" in headers["Permissions-Policy"]
    html = await response.text()
    match = re.search(r'<script type="application/json" id="vk-config">(.*?)</script>', html, re.S)
    assert match
    config = json.loads(match.group(1))
    assert config == await (await client.get("/api/config")).json()
    assert "openai.com" not in html


async def test_the_page_learns_kiosk_mode_from_its_url_and_dimming_from_the_settings(make_client):
    client = await make_client(dim_after=0.5)

    async def page(path: str) -> tuple[dict, str]:
        html = await (await client.get(path)).text()
        config = json.loads(re.search(r'id="vk-config">(.*?)</script>', html, re.S).group(1))
        return config, re.search(r'<meta name="viewport" content="([^"]*)"', html).group(1)

    config, viewport = await page("/?autostart&kiosk")  # as `voicekiosk kiosk` opens it
    assert (config["kiosk"], config["dim_after"], config["autostart"]) == (True, 0.5, True)
    assert "user-scalable=no" in viewport and "maximum-scale=1" in viewport
    config, viewport = await page("/")
    assert (config["kiosk"], config["dim_after"]) == (False, 0.5)
    assert "user-scalable" not in viewport


async def test_browser_mode_csp_allows_only_the_upstream_origin(make_client, settings):
    client = await make_client(sdp="browser")
    csp = (await client.get("/")).headers["Content-Security-Policy"]
    connect = re.search(r"connect-src ([^;]+)", csp).group(1).split()
    assert connect == ["'self'", settings.openai_base_url.rsplit("/v1", 1)[0]]


async def test_static_modules_revalidate(client):
    first = await client.get("/static/main.js")
    assert first.status == 200
    assert first.headers["Cache-Control"] == "no-cache"
    assert "javascript" in first.content_type
    again = await client.get("/static/main.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""


@pytest.mark.parametrize("path", ["/static/../settings.py", "/static/%2e%2e/pyproject.toml", "/static/nope.js"])
async def test_static_files_stay_inside_static(client, path):
    assert (await client.get(path)).status == 404


async def test_no_static_file_names_an_openai_host():
    from voicekiosk.web.assets import asset_dir

    files = [path for path in asset_dir("static").rglob("*") if path.is_file()]
    assert any(path.suffix == ".js" for path in files)  # the check below looked at something
    for path in files:
        assert "api.openai.com" not in path.read_text(encoding="utf-8"), path


async def test_healthz(client):
    body = await (await client.get("/healthz")).json()
    assert body == {
        "status": "ok",
        "version": version("voicekiosk"),
        "engine": "realtime",
        "openai": "configured",
        "calls": 0,
    }


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8116", "attacker.test:99999"])
async def test_unknown_host_names_are_refused(make_client, fake, host):
    """DNS rebinding: a site whose name now points at us must not ride on loopback's trust."""
    client = await make_client(sdp="browser")
    for method, path in (("GET", "/"), ("GET", "/api/config"), ("POST", "/api/token")):
        response = await client.request(method, path, headers={"Host": host, "Origin": f"http://{host}"})
        assert response.status == 421
        assert (await response.json())["error"]["code"] == "unknown_host"
    assert fake.requests == []


async def test_token_redirect_never_leaves_the_site(make_client):
    client = await make_client()
    url = URL(f"http://127.0.0.1:{client.port}//evil.example/?token=whatever&autostart", encoded=True)
    response = await client.session.get(url, allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/evil.example/?autostart"


async def test_odd_static_names_are_404(client):
    for path in ("/static/a%00b", "/static/.hidden", "/static/%2Fetc%2Fpasswd"):
        assert (await client.get(path)).status == 404
