"""Real TLS handshakes with the served certificate, each beside its negative control.

A fresh CA fails, a name the certificate does not cover fails; --cert/--key are served as given.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import trustme

from tests.certs import SAN, fetch, ipv6_loopback, leaf_of, sans, tls_server, trusting
from voicekiosk import net
from voicekiosk.errors import StartupError
from voicekiosk.settings import Settings
from voicekiosk.tls.certificates import sha256_fingerprint, spki_sha256_b64
from voicekiosk.tls.context import prepare, server_context
from voicekiosk.tls.store import CertStore

pytestmark = pytest.mark.usefixtures("no_lan")  # never the machine's real LAN addresses


def sni_name(which: str) -> str:
    """``which``, with "hostname" and "hostname.local" standing for this machine's names."""
    if which not in ("hostname", "hostname.local"):
        return which
    names = net.host_names()
    if not names:  # not "localhost" instead: that case is tested on its own
        pytest.skip("this machine's host name is localhost")
    return names[0] if which == "hostname" else names[-1]


# "hostname": this machine's name when it has a domain; a bare one ("kiosk") is never the CA's to
# vouch for (test_name_constraints.py), and <host>.local stands for it.
FULL_HOSTNAME = ["hostname"] if any("." in n and not n.endswith(".local") for n in net.host_names()) else []


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", *FULL_HOSTNAME, "hostname.local", SAN])
async def test_handshake_on_ipv4_loopback_verifies_with_only_our_ca(tls_settings: Settings, name: str) -> None:
    ctx = server_context(prepare(tls_settings))
    async with tls_server(ctx, "127.0.0.1") as port:
        answer, _ = await fetch("127.0.0.1", port, trusting(tls_settings.data_dir / "ca.pem"), sni_name(name))
    assert answer == b"ok"


async def test_handshake_on_ipv6_loopback_verifies_with_only_our_ca(tls_settings: Settings) -> None:
    if not ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback (::1)")
    ctx = server_context(prepare(tls_settings))
    async with tls_server(ctx, "::1") as port:
        answer, _ = await fetch("::1", port, trusting(tls_settings.data_dir / "ca.pem"), "::1")
    assert answer == b"ok"


async def test_host_names_are_in_the_certificate(tls_settings: Settings) -> None:
    server_context(prepare(tls_settings))
    names = sans(leaf_of(tls_settings.data_dir / "server.pem"))
    assert {"localhost", "127.0.0.1", "::1", SAN, *(n for n in net.host_names() if "." in n)} <= names


async def test_a_fresh_ca_and_a_foreign_name_fail(tls_settings: Settings, tmp_path: Path) -> None:
    ctx = server_context(prepare(tls_settings))
    stranger = tmp_path / "stranger.pem"
    trustme.CA().cert_pem.write_to_path(stranger)
    async with tls_server(ctx, "127.0.0.1") as port:
        assert (await fetch("127.0.0.1", port, trusting(tls_settings.data_dir / "ca.pem"), "localhost"))[0] == b"ok"
        with pytest.raises(ssl.SSLCertVerificationError):
            await fetch("127.0.0.1", port, trusting(stranger), "localhost")
        for foreign in ("not-in-cert.example", "127.0.0.2"):
            with pytest.raises(ssl.SSLCertVerificationError):
                await fetch("127.0.0.1", port, trusting(tls_settings.data_dir / "ca.pem"), foreign)


async def test_spki_hash_is_the_served_certificates(tls_settings: Settings) -> None:
    ctx = server_context(prepare(tls_settings))
    async with tls_server(ctx, "127.0.0.1") as port:
        _, served = await fetch("127.0.0.1", port, trusting(tls_settings.data_dir / "ca.pem"), "localhost")
    info = CertStore(tls_settings.data_dir).describe()
    assert spki_sha256_b64(served) == info.spki_sha256
    assert sha256_fingerprint(served) == info.leaf_sha256
    openssl = shutil.which("openssl")
    if openssl:  # the recipe Chromium documents for --ignore-certificate-errors-spki-list
        pub = subprocess.run([openssl, "x509", "-pubkey", "-noout"], input=served, capture_output=True, check=True)
        der = subprocess.run(
            [openssl, "pkey", "-pubin", "-outform", "der"], input=pub.stdout, capture_output=True, check=True
        )
        assert info.spki_sha256 == base64.b64encode(hashlib.sha256(der.stdout).digest()).decode()


async def test_own_certificate_is_loaded(tmp_path: Path, data_dir: Path) -> None:
    other = trustme.CA()
    leaf = other.issue_cert("localhost")
    cert, key, ca = tmp_path / "own.pem", tmp_path / "own-key.pem", tmp_path / "other-ca.pem"
    leaf.cert_chain_pems[0].write_to_path(cert)
    leaf.private_key_pem.write_to_path(key)
    other.cert_pem.write_to_path(ca)
    ctx = server_context(prepare(Settings(data_dir=data_dir, cert=cert, key=key)))
    async with tls_server(ctx, "127.0.0.1") as port:
        assert (await fetch("127.0.0.1", port, trusting(ca), "localhost"))[0] == b"ok"
    assert not data_dir.exists()  # no local CA was made

    wrong_key = tmp_path / "wrong-key.pem"
    other.issue_cert("localhost").private_key_pem.write_to_path(wrong_key)
    with pytest.raises(StartupError, match="is not the key of the certificate"):
        server_context(prepare(Settings(data_dir=data_dir, cert=cert, key=wrong_key)))
    with pytest.raises(StartupError, match="holds no PEM certificate"):
        server_context(prepare(Settings(data_dir=data_dir, cert=key, key=key)))
