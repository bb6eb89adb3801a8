"""The server certificate: lifetime, when it is reissued, the names it covers, and prepare()."""

from __future__ import annotations

import datetime
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.certs import leaf_of, sans
from voicekiosk import net
from voicekiosk.errors import StartupError
from voicekiosk.tls.certificates import canonical_identity, spki_sha256_b64
from voicekiosk.tls.leaf import server_cert
from voicekiosk.tls.store import CertStore

pytestmark = pytest.mark.usefixtures("no_lan")  # never the machine's real LAN addresses


def test_leaf_lifetime_is_under_apples_limit(store: CertStore) -> None:
    leaf = leaf_of(server_cert(store).cert_path)
    now = datetime.datetime.now(datetime.UTC)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= datetime.timedelta(days=825)
    assert now - datetime.timedelta(days=1) < leaf.not_valid_before_utc <= now
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_leaf_is_kept_until_the_names_change(store: CertStore, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = server_cert(store)
    again = server_cert(CertStore(data_dir))
    assert first.reissued and not again.reissued and again.serial == first.serial

    # A --san inside what the CA may vouch for (home.arpa); one outside it is covered by
    # test_name_constraints.py.
    local = "desk.home.arpa"
    with_san = server_cert(CertStore(data_dir), [local])
    assert with_san.reissued and with_san.serial != first.serial
    assert local in sans(leaf_of(with_san.cert_path))
    assert not server_cert(CertStore(data_dir), [local.upper()]).reissued  # same name, other spelling

    monkeypatch.setattr(net, "lan_addresses", lambda: ["10.20.30.40"])
    moved = server_cert(CertStore(data_dir), [local])
    assert moved.reissued and "10.20.30.40" in sans(leaf_of(moved.cert_path))

    assert server_cert(CertStore(data_dir)).reissued  # the --san went away


def test_leaf_is_reissued_30_days_before_expiry(store: CertStore) -> None:
    first = server_cert(store)
    later = CertStore(store.data_dir, clock=lambda: first.not_after - datetime.timedelta(days=29))
    renewed = server_cert(later)
    assert renewed.reissued and renewed.not_after > first.not_after


def test_damaged_leaf_files_are_reissued(store: CertStore, data_dir: Path) -> None:
    first = server_cert(store)
    (data_dir / "server-key.pem").write_bytes(b"garbage")
    assert server_cert(CertStore(data_dir)).serial != first.serial


def test_invalid_san_is_an_error(store: CertStore) -> None:
    with pytest.raises(StartupError, match="--san: 'bad_name' is not a host name"):
        server_cert(store, ["bad_name"])


def test_host_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "Kiosk-1")
    assert net.host_names() == ["kiosk-1", "kiosk-1.local"]
    monkeypatch.setattr(socket, "gethostname", lambda: "kiosk.example.org")
    assert net.host_names() == ["kiosk.example.org"]
    monkeypatch.setattr(socket, "gethostname", lambda: "localhost")
    assert net.host_names() == []
    assert net.loopback_names() == ["localhost", "127.0.0.1", "::1"]


def test_identity_canonical_forms() -> None:
    assert canonical_identity("[::1]") == "::1"
    assert canonical_identity("fe80::1%eth0") == "fe80::1"
    assert canonical_identity("Café.Example.") == "xn--caf-dma.example"
    assert canonical_identity("*.kiosk.example") == "*.kiosk.example"
    for bad in ("my_pc", "-x.example", "a..b", ""):
        assert canonical_identity(bad) is None
    assert canonical_identity("2001:DB8:0::1") == "2001:db8::1"


def test_prepare_keeps_cryptography_out_of_the_server_process(tmp_path: Path) -> None:
    """The server process gets the certificate facts from a forked child, never the imports."""
    script = (
        "import json, sys; from pathlib import Path; from voicekiosk.tls.context import prepare; "
        "from voicekiosk.settings import Settings; "
        f"files = prepare(Settings(data_dir=Path({str(tmp_path)!r}))); "
        "print(json.dumps({'heavy': sorted(m for m in sys.modules if m.split('.')[0] in "
        "('cryptography', 'trustme') or m in ('voicekiosk.tls.store', 'voicekiosk.tls.leaf')), 'spki': files.spki, "
        "'cert': str(files.cert), 'ca': files.ca.name}))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    facts = json.loads(out.stdout)
    assert facts["heavy"] == []
    assert facts["spki"] == spki_sha256_b64(Path(facts["cert"]).read_bytes())
    assert facts["ca"].startswith("voicekiosk CA on ")


def test_prepare_reports_a_bad_own_certificate_as_a_startup_error(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    script = (
        "from pathlib import Path; from voicekiosk.tls.context import prepare\n"
        "from voicekiosk.errors import StartupError; from voicekiosk.settings import Settings\n"
        f"settings = Settings(data_dir=Path({str(tmp_path)!r}), cert=Path({str(cert)!r}), key=Path({str(cert)!r}))\n"
        "try: prepare(settings)\n"
        "except StartupError as exc: print('StartupError:', exc)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.startswith("StartupError: --cert:") and "no PEM certificate" in out.stdout
