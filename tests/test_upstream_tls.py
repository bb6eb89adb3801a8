"""The broker verifies OpenAI's certificate: against ca_bundle, SSL_CERT_FILE, or public roots."""

from __future__ import annotations

import ssl

import pytest
import trustme


@pytest.fixture
def upstream_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_fake(aiohttp_server, fake, upstream_ca):
    """The fake OpenAI over real TLS, with a certificate from a CA nobody trusts by default."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    upstream_ca.issue_cert("127.0.0.1").configure_cert(context)
    return await aiohttp_server(fake.app(), ssl=context)


async def mint_status(make_client, **overrides) -> tuple[int, str]:
    client = await make_client(sdp="browser", **overrides)
    response = await client.post("/api/token")
    error = (await response.json()).get("error", {})
    return response.status, f"{error['code']}: {error['message']}" if error else ""


async def test_ca_bundle_is_trusted(make_client, tls_fake, upstream_ca, tmp_path):
    bundle = tmp_path / "upstream-ca.pem"
    upstream_ca.cert_pem.write_to_path(bundle)
    base = str(tls_fake.make_url("/v1"))
    assert base.startswith("https://")
    assert await mint_status(make_client, openai_base_url=base, ca_bundle=bundle) == (200, "")


async def test_ssl_cert_file_is_honoured(make_client, tls_fake, upstream_ca, tmp_path, monkeypatch):
    bundle = tmp_path / "upstream-ca.pem"
    upstream_ca.cert_pem.write_to_path(bundle)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert await mint_status(make_client, openai_base_url=str(tls_fake.make_url("/v1"))) == (200, "")


async def test_an_untrusted_upstream_is_refused(make_client, tls_fake, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    status, error = await mint_status(make_client, openai_base_url=str(tls_fake.make_url("/v1")))
    assert status == 503 and error.startswith("upstream_unreachable: Cannot verify OpenAI's certificate")
