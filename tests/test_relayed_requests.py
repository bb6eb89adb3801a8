"""Requests that passed through something else: a reverse proxy on this machine, the plain-HTTP port."""

from __future__ import annotations

import pytest

from voicekiosk.tls.context import prepare
from voicekiosk.web.access import COOKIE, PROXY_HEADERS, load_token
from voicekiosk.web.setup_site import create_setup_app

RELAYED = {
    "Forwarded": "for=192.0.2.7;proto=https",
    "X-Forwarded-For": "192.0.2.7",
    "X-Forwarded-Host": "kiosk.example",
    "X-Forwarded-Proto": "https",  # a proxy that sends only this (or -Port) is a proxy all the same
    "x-forwarded-port": "443",
    "X-Real-IP": "192.0.2.7",
}


def test_every_proxy_header_is_covered():
    assert set(PROXY_HEADERS) <= set(RELAYED)


@pytest.mark.parametrize("header", sorted(RELAYED))
async def test_a_proxied_request_from_loopback_needs_the_token(make_client, settings, header):
    client = await make_client()
    assert (await client.get("/api/config")).status == 200  # loopback itself: let in
    refused = await client.get("/api/config", headers={header: RELAYED[header]})
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "unauthorized"
    assert (await client.get("/", headers={header: RELAYED[header]})).status == 401
    token = load_token(settings.data_dir)
    cookie = {header: RELAYED[header], "Cookie": f"{COOKIE}={token}"}
    assert (await client.get("/api/config", headers=cookie)).status == 200


async def test_a_proxied_token_link_still_lets_the_device_in(make_client, settings):
    client = await make_client()
    token = load_token(settings.data_dir)
    relayed = {"X-Forwarded-For": "192.0.2.7"}
    wrong = await client.get("/?token=not-the-token", headers=relayed, allow_redirects=False)
    assert wrong.status == 401
    right = await client.get(f"/?token={token}", headers=relayed, allow_redirects=False)
    assert right.status == 302 and right.cookies[COOKIE].value == token


async def test_the_http_redirect_never_echoes_a_token(aiohttp_client, settings):
    client = await aiohttp_client(create_setup_app(settings, prepare(settings).ca))
    response = await client.get("/talk?x=1&token=sekret-token-value&y=2", allow_redirects=False)
    assert response.status == 302
    location = response.headers["Location"]
    assert location == f"https://127.0.0.1:{settings.port}/talk?x=1&y=2"
    assert "sekret" not in await response.text()
