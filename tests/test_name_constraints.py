"""The local CA can vouch for this kiosk only: a stolen CA key signs nothing any device accepts
for another site, and everything voicekiosk itself issues still verifies."""

from __future__ import annotations

import datetime
import io
import ipaddress
import logging
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from rich.console import Console

from tests.certs import SAN, leaf_of, sans
from tests.helpers import free_port, require_loopback_only
from voicekiosk import net
from voicekiosk.server import Server
from voicekiosk.settings import Settings
from voicekiosk.tls.certificates import BACKDATE, issue_server_cert, utcnow
from voicekiosk.tls.constraints import vouches_for
from voicekiosk.tls.leaf import server_cert
from voicekiosk.tls.store import CertStore

pytestmark = pytest.mark.usefixtures("no_lan")  # never the machine's real LAN addresses

FOREIGN = ["www.google.com", "8.8.8.8", "2001:4860:4860::8888", "bank.example", "kiosk.example.evil"]


def forged_leaf(store: CertStore, name: str, tmp_path: Path) -> Path:
    """What a thief with ``ca-key.pem`` could sign: a certificate for ``name``."""
    ca = store.ca()
    now = utcnow()
    pem, _ = issue_server_cert(ca.cert, ca.key, [name], now - BACKDATE, now + datetime.timedelta(days=30))
    path = tmp_path / f"forged-{name.replace(':', '_')}.pem"
    path.write_bytes(pem)
    return path


def openssl_verify(ca: Path, leaf: Path, name: str) -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is missing (apt-get install openssl)"
    check = ["-verify_ip", name] if net_address(name) else ["-verify_hostname", name]
    return subprocess.run(
        [openssl, "verify", "-CAfile", str(ca), "-purpose", "sslserver", *check, str(leaf)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def cryptography_verify(ca: x509.Certificate, leaf: x509.Certificate, name: str) -> None:
    address = net_address(name)
    subject = x509.IPAddress(address) if address else x509.DNSName(name)
    verifier = PolicyBuilder().store(Store([ca])).time(utcnow()).build_server_verifier(subject)
    verifier.verify(leaf, [])


def net_address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


@pytest.mark.parametrize("name", FOREIGN)
def test_a_stolen_ca_key_cannot_vouch_for_another_site(store: CertStore, tmp_path: Path, name: str) -> None:
    forged = forged_leaf(store, name, tmp_path)
    result = openssl_verify(store.ca_path, forged, name)
    assert result.returncode != 0 and "permitted subtree violation" in result.stdout + result.stderr, result
    with pytest.raises(VerificationError, match="name constraint"):
        cryptography_verify(store.ca_certificate(), leaf_of(forged), name)


def test_every_certificate_we_issue_verifies_for_each_of_its_names(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(net, "lan_addresses", lambda: ["10.1.2.3", "192.168.7.20", "fd00::20"])
    store = CertStore(data_dir)
    leaf = server_cert(store, [SAN, "desk.home.arpa"])
    names = sans(leaf_of(leaf.cert_path))
    assert {"localhost", "127.0.0.1", "::1", SAN, "desk.home.arpa", "10.1.2.3", "192.168.7.20", "fd00::20"} <= names
    assert leaf.left_out == ()
    for name in names:
        result = openssl_verify(store.ca_path, leaf.cert_path, name)
        assert result.returncode == 0, (name, result.stdout, result.stderr)
        cryptography_verify(store.ca_certificate(), leaf_of(leaf.cert_path), name)


@pytest.mark.parametrize("host", ["cafe", "museum"])
def test_a_machine_named_like_a_public_domain_gets_no_say_over_it(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    """A name permits every name below it: a kiosk called "cafe" must not vouch for *.cafe."""
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    store = CertStore(data_dir)
    leaf = server_cert(store)
    assert f"{host}.local" in sans(leaf_of(leaf.cert_path)) and host not in sans(leaf_of(leaf.cert_path))
    assert leaf.left_out == ()  # its bare name is expected to be missing: no warning
    for name in (f"www.google.{host}", host):
        forged = forged_leaf(store, name, tmp_path)
        assert openssl_verify(store.ca_path, forged, name).returncode != 0, name
    assert openssl_verify(store.ca_path, leaf.cert_path, f"{host}.local").returncode == 0


def test_ca_and_leaf_are_for_websites_only(store: CertStore) -> None:
    leaf = leaf_of(server_cert(store).cert_path)
    ca = store.ca_certificate()
    for cert in (ca, leaf):
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical and constraints.value.excluded_subtrees is None


def test_public_addresses_and_late_names_are_left_out(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "lan_addresses", lambda: ["192.168.1.5", "203.0.113.9", "2001:db8::5"])
    first = server_cert(CertStore(data_dir), [SAN])  # the CA is made now: SAN is one of its names
    assert first.left_out == ("203.0.113.9", "2001:db8::5")
    assert {"192.168.1.5", SAN} <= sans(leaf_of(first.cert_path))
    assert not {"203.0.113.9", "2001:db8::5"} & sans(leaf_of(first.cert_path))
    late = server_cert(CertStore(data_dir), [SAN, "late.example"])  # added after the CA was made
    assert "late.example" in late.left_out and "late.example" not in sans(leaf_of(late.cert_path))


def test_a_san_given_before_the_ca_is_made_may_be_public(data_dir: Path) -> None:
    leaf = server_cert(CertStore(data_dir), ["203.0.113.9", "kiosk.museum.example"])
    assert leaf.left_out == ()
    ca = CertStore(data_dir).ca_certificate()
    assert vouches_for(ca, "203.0.113.9") and not vouches_for(ca, "203.0.113.10")  # the address, not its network
    assert vouches_for(ca, "kiosk.museum.example") and not vouches_for(ca, "museum.example")


def old_unconstrained_ca(data_dir: Path) -> None:
    """A CA as voicekiosk made them before name constraints (trustme's is unconstrained too)."""
    data_dir.mkdir(mode=0o700, parents=True)
    ca = trustme.CA()
    (data_dir / "ca.pem").write_bytes(ca.cert_pem.bytes())
    (data_dir / "ca-key.pem").write_bytes(ca.private_key_pem.bytes())
    (data_dir / "ca-key.pem").chmod(0o600)


async def start_and_stop(settings: Settings) -> str:
    """What the terminal shows when a real server starts and stops with ``settings``."""
    out = io.StringIO()
    server = Server(settings, Console(file=out, width=200, color_system=None))
    await server.startup()
    await server.shutdown()
    return out.getvalue()


async def test_an_unconstrained_ca_keeps_working_and_every_start_says_how_to_replace_it(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old_unconstrained_ca(data_dir)
    settings = Settings(data_dir=data_dir, host="127.0.0.1", port=free_port(), http_port=0, api_key=None)
    with caplog.at_level(logging.WARNING, logger="voicekiosk"):
        banner = await start_and_stop(settings)
    warnings = [r.getMessage() for r in caplog.records if "can vouch for any website" in r.getMessage()]
    assert len(warnings) == 1 and "voicekiosk cert rotate" in warnings[0]
    assert "https://127.0.0.1:" in banner  # it still serves, with the old CA


async def test_the_banner_shows_the_fingerprint_and_no_left_out_address(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    require_loopback_only("it listens on every address")
    monkeypatch.setattr(net, "lan_addresses", lambda: ["192.168.1.5", "203.0.113.9"])
    settings = Settings(data_dir=data_dir, host="0.0.0.0", port=free_port(), http_port=free_port(), api_key=None)
    with caplog.at_level(logging.WARNING, logger="voicekiosk"):
        banner = await start_and_stop(settings)
    info = CertStore(data_dir).ca_info()
    assert info.constrained and info.sha256 in banner and info.short_fingerprint in banner
    assert "https://192.168.1.5:" in banner and "203.0.113.9" not in banner
    [left_out] = [r.getMessage() for r in caplog.records if "Left out of the certificate" in r.getMessage()]
    assert "203.0.113.9" in left_out and "--cert/--key" in left_out and "cert rotate --san" in left_out
