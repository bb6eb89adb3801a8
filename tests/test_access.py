"""Who may talk: the access token, the session limits, the setup site, the running server."""

from __future__ import annotations

import asyncio
import os
import plistlib
import signal
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestClient
from click.testing import CliRunner
from cryptography import x509

from tests.conftest import free_port, in_own_namespace, last_json, require_isolated_browser
from tests.test_broker import OFFER
from voicekiosk.cli import cli
from voicekiosk.tls.context import prepare
from voicekiosk.tls.store import CertStore
from voicekiosk.web.setup_site import create_setup_app

SDP = {"Content-Type": "application/sdp"}
ROOT = Path(__file__).resolve().parent.parent


async def test_rate_limit_per_client_answers_429_with_retry_after(make_client):
    client = await make_client(rate=3, max_calls=100)
    for _ in range(3):
        assert (await client.post("/api/call", data=OFFER, headers=SDP)).status == 201
    refused = await client.post("/api/call", data=OFFER, headers=SDP)
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61


async def test_max_calls_answers_busy_until_a_line_frees(make_client):
    client = await make_client(max_calls=2, rate=100)
    first = await client.post("/api/call", data=OFFER, headers=SDP)
    assert (await client.post("/api/call", data=OFFER, headers=SDP)).status == 201
    busy = await client.post("/api/call", data=OFFER, headers=SDP)
    assert busy.status == 429 and (await busy.json())["error"]["code"] == "busy"
    assert busy.headers["Retry-After"]
    assert (await client.delete(first.headers["Location"])).status == 200
    assert (await client.post("/api/call", data=OFFER, headers=SDP)).status == 201


def test_token_command_keeps_and_rotates_the_token(tmp_path: Path):
    runner = CliRunner()
    first = runner.invoke(cli, ["token", "--data-dir", str(tmp_path)])
    again = runner.invoke(cli, ["token", "--data-dir", str(tmp_path)])
    rotated = runner.invoke(cli, ["token", "--data-dir", str(tmp_path), "--rotate"])
    assert first.exit_code == again.exit_code == rotated.exit_code == 0
    assert first.output == again.output and len(first.output.strip()) >= 16
    assert rotated.output != first.output
    assert (tmp_path / "access-token").stat().st_mode & 0o777 == 0o600


def test_no_tls_is_refused_off_loopback():
    result = CliRunner().invoke(cli, ["config", "--no-tls"], env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 2
    assert "--no-tls" in result.output and "--host 127.0.0.1" in result.output
    ok = CliRunner().invoke(cli, ["config", "--no-tls", "--host", "127.0.0.1"], env={"OPENAI_API_KEY": ""})
    assert ok.exit_code == 0


@pytest.fixture
async def setup_client(aiohttp_client, settings) -> TestClient:
    return await aiohttp_client(create_setup_app(settings, prepare(settings).ca))


async def test_setup_site_serves_the_ca_in_every_format(setup_client, settings):
    store = CertStore(settings.data_dir)
    pem = await setup_client.get("/ca.pem")
    assert pem.status == 200 and pem.content_type == "application/x-pem-file"
    assert await pem.read() == store.ca_pem()
    der = await setup_client.get("/ca.crt")
    assert der.content_type == "application/x-x509-ca-cert"
    cert = x509.load_der_x509_certificate(await der.read())
    assert cert == x509.load_pem_x509_certificate(store.ca_pem())
    profile = await setup_client.get("/voicekiosk.mobileconfig")
    assert profile.content_type == "application/x-apple-aspen-config"
    payload = plistlib.loads(await profile.read())["PayloadContent"][0]
    assert payload["PayloadType"] == "com.apple.security.root"
    assert payload["PayloadContent"] == store.ca_der()


@pytest.mark.parametrize(
    ("agent", "opened"),
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1", "iPhone / iPad"),
        ("Mozilla/5.0 (Linux; Android 15; Pixel 8) Chrome/130.0 Mobile Safari/537.36", "Android"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0", "Windows"),
    ],
)
async def test_setup_page_opens_the_visitors_platform(setup_client, agent, opened):
    html = await (await setup_client.get("/", headers={"User-Agent": agent})).text()
    assert f"<details open>\n    <summary>{opened}</summary>" in html
    assert html.count("<details open>") == 1
    assert "Certificate Trust Settings" in html  # iOS's easily missed second switch
    assert "CN=" not in html and "voicekiosk CA on" in html


async def test_setup_port_redirects_everything_else_to_https(setup_client, settings):
    response = await setup_client.get("/talk?x=1", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == f"https://127.0.0.1:{settings.port}/talk?x=1"


async def test_page_links_the_setup_site_for_insecure_browsers(make_client):
    client = await make_client(tls=True, http_port=18117)
    config = await (await client.get("/api/config")).json()
    assert config["setup_url"] == "http://127.0.0.1:18117/"


# -- a LAN address the test makes itself, inside its own network namespace -------------------

LAN_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, ssl, subprocess, sys
    from pathlib import Path
    import httpx
    from aiohttp import web
    from voicekiosk.web.app import create_app
    from voicekiosk.tls.context import prepare, server_context
    from voicekiosk.settings import Settings

    def sh(*cmd):
        subprocess.run(cmd, check=True)

    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "vk0", "type", "veth", "peer", "name", "vk1")
    sh("ip", "addr", "add", "192.0.2.10/24", "dev", "vk0")
    sh("ip", "link", "set", "vk0", "up")
    sh("ip", "link", "set", "vk1", "up")

    async def main():
        data = Path(sys.argv[1])
        settings = Settings(data_dir=data, api_key=None, host="0.0.0.0", port=18443)
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", 18443, ssl_context=server_context(prepare(settings))).start()
        token = (data / "access-token").read_text().strip()
        ctx = ssl.create_default_context(cafile=str(data / "ca.pem"))
        out = {}
        async with httpx.AsyncClient(verify=ctx) as lan:
            base = "https://192.0.2.10:18443"
            out["page"] = (await lan.get(base + "/")).status_code
            api = await lan.get(base + "/api/config")
            out["api"] = [api.status_code, api.json()["error"]["code"]]
            out["wrong"] = (await lan.get(base + "/?token=" + "x" * len(token))).status_code
            granted = await lan.get(base + "/?token=" + token)
            out["grant"] = [granted.status_code, granted.headers.get("location"), granted.headers.get("set-cookie")]
            out["after"] = (await lan.get(base + "/")).status_code
            out["api_after"] = (await lan.get(base + "/api/config")).status_code
        async with httpx.AsyncClient(verify=ctx) as local:
            out["loopback"] = (await local.get("https://127.0.0.1:18443/")).status_code
        await runner.cleanup()
        print(json.dumps(out))

    asyncio.run(main())
    """
)


def test_token_flow_from_a_lan_address_in_a_private_namespace(tmp_path: Path):
    out = last_json(in_own_namespace("-c", LAN_SCRIPT, str(tmp_path), timeout=60))
    assert out["page"] == 401
    assert out["api"] == [401, "unauthorized"]
    assert out["wrong"] == 401
    status, location, cookie = out["grant"]
    assert status == 302 and location == "/"
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert out["after"] == 200 and out["api_after"] == 200
    assert out["loopback"] == 200  # loopback needs no token


@pytest.mark.browser
def test_a_phone_on_the_lan_goes_from_the_qr_code_to_talking(tmp_path: Path, mic_wav: Path):
    """tests/lan_phone.py, in a namespace of its own with 192.0.2.10: QR link, cookie, tap, talk."""
    require_isolated_browser()
    seen = last_json(in_own_namespace("-m", "tests.lan_phone", str(tmp_path), str(mic_wav), timeout=120))
    assert seen["url_after_redirect"] == "https://192.0.2.10:18443/"  # the token left the URL
    assert seen["cookie"] == ["voicekiosk_access"]
    assert seen["secure"] is True
    assert seen["state"] in ("listening", "user-speaking", "thinking", "agent-speaking")
    assert "192.0.2.10" in seen["ice"] and set(seen["ice"]) <= {"192.0.2.10", "127.0.0.1"}


# -- the real command, started as a user would ----------------------------------------------


def test_serve_starts_over_https_answers_and_stops_cleanly(tmp_path: Path):
    port, http_port = free_port(), free_port()
    env = {**os.environ, "OPENAI_API_KEY": "", "VOICEKIOSK_DATA_DIR": str(tmp_path), "COLUMNS": "100"}
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--http-port", str(http_port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicekiosk", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        health = asyncio.run(_poll_health(tmp_path, port))
        assert health == {"status": "ok", "version": health["version"], "openai": "no_api_key", "calls": 0}
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=10)[0].decode()
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    assert f"https://127.0.0.1:{port}/" in output
    assert "OPENAI_API_KEY" in output


async def _poll_health(data_dir: Path, port: int) -> dict:
    for _ in range(150):
        await asyncio.sleep(0.1)
        if not (data_dir / "server.pem").exists():
            continue  # the server makes its CA and certificate before it listens
        verify = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
        try:
            async with httpx.AsyncClient(verify=verify) as client:
                return (await client.get(f"https://localhost:{port}/healthz")).json()
        except httpx.HTTPError:
            continue
    raise AssertionError("the server never answered")


def test_loopback_is_recognised_in_every_spelling():
    from voicekiosk.net import is_loopback

    for host in ("127.0.0.1", "127.9.0.1", "::1", "[::1]", "::1%lo", "::ffff:127.0.0.1", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("192.0.2.10", "::ffff:192.0.2.1", "localhost.example", "0.0.0.0", "", None):
        assert not is_loopback(host), host
