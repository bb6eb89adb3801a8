"""The CA's fingerprint is shown where nobody on the network can change it (the kiosk's own
screen, the terminal, ``voicekiosk cert``), and the setup page says to compare it there."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from click.testing import CliRunner

from tests.certs import SAN
from voicekiosk.cli import cli
from voicekiosk.tls.context import prepare
from voicekiosk.web.setup_site import create_setup_app


async def test_the_kiosk_screen_shows_the_fingerprint_and_the_setup_link(make_client, settings):
    tls = dataclasses.replace(settings, tls=True, http_port=18117)
    ca = prepare(tls).ca
    assert ca is not None and ca.constrained
    client = await make_client(tls=True, http_port=18117, ca=ca)
    html = await (await client.get("/")).text()
    assert ca.short_fingerprint in html and ca.sha256 in html
    assert "http://127.0.0.1:18117/" in html
    plain = await (await make_client()).get("/")  # no local CA (e.g. --no-tls): nothing to show
    # (the page's words for it are in its inlined translation table, but no element shows them)
    assert 'class="about"' not in (text := await plain.text()) and "short-fingerprint" not in text


async def test_the_setup_page_says_where_to_compare_the_fingerprint(aiohttp_client, settings):
    ca = prepare(settings).ca
    assert ca is not None
    client = await aiohttp_client(create_setup_app(settings, ca))
    html = await (await client.get("/", headers={"User-Agent": "Mozilla/5.0 (iPhone)"})).text()
    assert ca.short_fingerprint in html and ca.sha256 in html
    assert "the kiosk's own screen" in html and "voicekiosk terminal" in html
    assert "never for another website" in html  # said only of a constrained CA
    assert "-p ssl" in html and "Secure Sockets Layer (SSL)" in html  # the Mac steps trust it for websites only


def test_cert_shows_the_fingerprint_and_what_the_ca_may_vouch_for(tmp_path: Path):
    result = CliRunner().invoke(cli, ["cert", "--data-dir", str(tmp_path)], env={"VOICEKIOSK_SAN": SAN})
    assert result.exit_code == 0, result.output
    lines = {line.split("  ", 1)[0]: line for line in result.output.splitlines()}
    vouches = " ".join(result.output.split())
    assert "CA SHA-256" in lines and "CA vouches for" in lines
    for permitted in ("localhost", "home.arpa", SAN, "192.168.0.0/16", "fc00::/7"):
        assert permitted in vouches
