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
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from aiohttp.test_utils import TestClient
from click.testing import CliRunner
from cryptography import x509

from tests.browser import require_isolated_browser
from tests.helpers import LAN, free_port, in_own_namespace, last_json, post_call, within
from voicekiosk.cli import cli
from voicekiosk.tls.context import prepare
from voicekiosk.tls.store import CertStore
from voicekiosk.web.setup_site import create_setup_app


async def test_rate_limit_per_client_answers_429_with_retry_after(make_client):
    client = await make_client(rate=3, max_calls=100)
    for _ in range(3):
        assert (await post_call(client)).status == 201
    refused = await post_call(client)
    assert refused.status == 429
    assert (await refused.json())["error"]["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61


async def test_max_calls_answers_busy_until_a_line_frees(make_client):
    client = await make_client(max_calls=2, rate=100)
    first = await post_call(client)
    assert (await post_call(client)).status == 201
    busy = await post_call(client)
    assert busy.status == 429 and (await busy.json())["error"]["code"] == "busy"
    assert busy.headers["Retry-After"]
    assert (await client.delete(first.headers["Location"])).status == 200
    assert (await post_call(client)).status == 201


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
    import asyncio, io, json, ssl, sys
    from pathlib import Path
    import httpx
    from rich.console import Console
    from tests.helpers import LAN, add_lan, loopback_up
    from voicekiosk.server import Server
    from voicekiosk.settings import Settings

    loopback_up()
    add_lan()

    async def main():
        data = Path(sys.argv[1])
        settings = Settings(data_dir=data, api_key=None, host="0.0.0.0", port=18443, http_port=0)
        server = Server(settings, Console(file=io.StringIO()))
        await asyncio.wait_for(server.startup(), 30)
        token = (data / "access-token").read_text().strip()
        ctx = ssl.create_default_context(cafile=str(data / "ca.pem"))
        out = {}
        try:
            async with httpx.AsyncClient(verify=ctx) as lan:
                base = f"https://{LAN}:18443"
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
        finally:
            await asyncio.wait_for(server.shutdown(), 30)
        print(json.dumps(out))

    asyncio.run(main())
    """
)


@pytest.mark.slow
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
@pytest.mark.slow
def test_a_phone_on_the_lan_goes_from_the_qr_code_to_talking(tmp_path: Path, mic_wav: Path):
    """tests/lan_phone.py, in a namespace of its own with a LAN address: QR link, cookie, tap, talk."""
    require_isolated_browser()
    seen = last_json(in_own_namespace("-m", "tests.lan_phone", str(tmp_path), str(mic_wav), timeout=120))
    assert seen["url_after_redirect"] == f"https://{LAN}:18443/"  # the token left the URL
    assert seen["cookie"] == ["voicekiosk_access"]
    assert seen["secure"] is True
    assert seen["state"] in ("listening", "user-speaking", "thinking", "agent-speaking")
    assert LAN in seen["ice"] and set(seen["ice"]) <= {LAN, "127.0.0.1"}


# -- the real command, started as a user would ----------------------------------------------


async def test_serve_starts_over_https_answers_and_stops_cleanly(tmp_path: Path):
    port, http_port = free_port(), free_port()
    env = {**os.environ, "OPENAI_API_KEY": "", "VOICEKIOSK_DATA_DIR": str(tmp_path), "COLUMNS": "100"}
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--http-port", str(http_port)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voicekiosk", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        # The banner comes once the server listens (its CA and certificate made before).
        banner = await within(_read_until(proc, f"https://127.0.0.1:{port}/"), 30, "the banner")
        verify = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        async with httpx.AsyncClient(verify=verify) as client:
            health = (await client.get(f"https://localhost:{port}/healthz")).json()
        assert health == {
            "status": "ok",
            "version": version("voicekiosk"),
            "engine": "realtime",
            "openai": "no_api_key",
            "calls": 0,
        }
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout is not None
        output = banner + (await within(proc.stdout.read(), 10, "the output to end")).decode()
        await within(proc.wait(), 10, "the server to exit")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, output
    assert "OPENAI_API_KEY" in output


async def _read_until(proc: asyncio.subprocess.Process, marker: str) -> str:
    """What ``proc`` printed, up to and including the line with ``marker``."""
    assert proc.stdout is not None
    text = ""
    while marker not in text:
        line = await proc.stdout.readline()
        if not line:
            raise AssertionError(f"exited ({await proc.wait()}) before printing {marker}:\n{text}")
        text += line.decode()
    return text


def test_loopback_is_recognised_in_every_spelling():
    from voicekiosk.net import is_loopback

    for host in ("127.0.0.1", "127.9.0.1", "::1", "[::1]", "::1%lo", "::ffff:127.0.0.1", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("192.0.2.10", "::ffff:192.0.2.1", "localhost.example", "0.0.0.0", "", None):
        assert not is_loopback(host), host
