"""The local CA, the server certificate and trust installation, proven with real TLS handshakes.

Every handshake that succeeds has negative controls next to it: a fresh CA fails, a name the
certificate does not cover fails. The LAN-address tests run in a network namespace of their own,
so no real interface or address is used.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import json
import os
import plistlib
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import require_namespaces
from voicekiosk import net
from voicekiosk.errors import StartupError
from voicekiosk.settings import Settings
from voicekiosk.tls import trust
from voicekiosk.tls.certificates import canonical_identity, sha256_fingerprint, spki_sha256_b64
from voicekiosk.tls.context import prepare, server_context
from voicekiosk.tls.leaf import server_cert
from voicekiosk.tls.profile import apple_profile
from voicekiosk.tls.store import CertStore

REPO = Path(__file__).resolve().parent.parent
SAN = "kiosk.example"


@pytest.fixture(autouse=True)
def no_lan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the namespace test, the machine has no LAN addresses (never use real ones)."""
    monkeypatch.setattr(net, "lan_addresses", lambda: [])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> CertStore:
    return CertStore(data_dir)


@pytest.fixture
def tls_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, san=(SAN,), host="0.0.0.0")


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@contextlib.asynccontextmanager
async def tls_server(ctx: ssl.SSLContext, host: str) -> AsyncIterator[int]:
    """A TLS server on ``host`` that answers ``ok`` and hangs up; yields its port."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.drain()
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(answer, host, 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def fetch(host: str, port: int, client: ssl.SSLContext, server_hostname: str) -> tuple[bytes, bytes]:
    """Connect, verify, read the answer; returns (answer, the server's certificate as PEM)."""
    reader, writer = await asyncio.open_connection(host, port, ssl=client, server_hostname=server_hostname)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return await reader.read(), ssl.DER_cert_to_PEM_cert(der).encode()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


def trusting(ca_pem: Path) -> ssl.SSLContext:
    """A client context that trusts only ``ca_pem``."""
    return ssl.create_default_context(cafile=str(ca_pem))


def leaf_of(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- handshakes over loopback ----------------------------------------------------------------


def sni_name(which: str) -> str:
    names = net.host_names()
    return {"hostname": names[0] if names else "localhost", "hostname.local": names[-1] if names else "localhost"}.get(
        which, which
    )


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "hostname", "hostname.local", SAN])
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
    assert {"localhost", "127.0.0.1", "::1", SAN, *net.host_names()} <= names


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


# -- the CA and the leaf on disk --------------------------------------------------------------


def test_ca_persists_with_private_modes(store: CertStore, data_dir: Path) -> None:
    server_cert(store)
    assert CertStore(data_dir).ca_sha256() == store.ca_sha256()
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "ca-key.pem") == 0o600
    assert mode(data_dir / "server-key.pem") == 0o600
    assert mode(data_dir / "ca.pem") == 0o644


def test_ca_names_itself_and_has_a_sane_lifetime(store: CertStore) -> None:
    ca = x509.load_pem_x509_certificate(store.ca_pem())
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert datetime.timedelta(days=3640) < lifetime < datetime.timedelta(days=3660)
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "voicekiosk local CA"
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        f"voicekiosk CA on {socket.gethostname()}"
    )
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0


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

    with_san = server_cert(CertStore(data_dir), [SAN])
    assert with_san.reissued and with_san.serial != first.serial
    assert SAN in sans(leaf_of(with_san.cert_path))
    assert not server_cert(CertStore(data_dir), [SAN.upper()]).reissued  # same name, other spelling

    monkeypatch.setattr(net, "lan_addresses", lambda: ["198.51.100.7"])
    moved = server_cert(CertStore(data_dir), [SAN])
    assert moved.reissued and "198.51.100.7" in sans(leaf_of(moved.cert_path))

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


def test_missing_ca_key_is_an_error_not_a_new_ca(store: CertStore, data_dir: Path) -> None:
    ca_pem = store.ca_pem()
    (data_dir / "ca-key.pem").unlink()
    with pytest.raises(StartupError, match=r"ca-key\.pem is missing.*voicekiosk cert rotate"):
        server_cert(CertStore(data_dir))
    assert (data_dir / "ca.pem").read_bytes() == ca_pem
    assert not (data_dir / "ca-key.pem").exists()


def test_foreign_ca_key_is_an_error(store: CertStore, data_dir: Path) -> None:
    store.ca()
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (data_dir / "ca-key.pem").write_bytes(other)
    with pytest.raises(StartupError, match=r"does not belong to.*voicekiosk cert rotate"):
        CertStore(data_dir).ca()
    (data_dir / "ca-key.pem").write_bytes(b"not a key")
    with pytest.raises(StartupError, match="not an unencrypted PEM private key"):
        CertStore(data_dir).ca()
    (data_dir / "ca.pem").unlink()
    with pytest.raises(StartupError, match=r"ca\.pem is missing"):
        CertStore(data_dir).ca()


def test_rotate_makes_a_new_ca_and_retires_the_old(store: CertStore, data_dir: Path) -> None:
    old_leaf = server_cert(store)
    old_sha = store.ca_sha256()
    (data_dir / "ca-key.pem").unlink()  # rotate is also the way out of a lost key
    retired = store.rotate()
    assert retired is not None and (retired / "ca.pem").exists() and mode(retired) == 0o700
    assert not list(retired.glob("*key*"))
    assert store.ca_sha256() != old_sha == sha256_fingerprint((retired / "ca.pem").read_bytes())
    new_leaf = server_cert(CertStore(data_dir))
    assert new_leaf.reissued and new_leaf.serial != old_leaf.serial
    leaf_of(new_leaf.cert_path).verify_directly_issued_by(x509.load_pem_x509_certificate(store.ca_pem()))


def test_invalid_san_is_an_error(store: CertStore) -> None:
    with pytest.raises(StartupError, match="--san: 'bad_name' is not a host name"):
        server_cert(store, ["bad_name"])


def test_describe_export_and_apple_profile(store: CertStore, data_dir: Path, tmp_path: Path) -> None:
    server_cert(store, [SAN])
    info = store.describe()
    assert info.ca_sha256 == hashlib.sha256(store.ca_der()).digest().hex(":").upper()
    assert SAN in info.names and "::1" in info.names
    assert info.leaf_not_after is not None and info.ca_not_after > info.leaf_not_after

    pem_path, der_path = store.export_ca(tmp_path / "out")
    assert pem_path.read_bytes() == (data_dir / "ca.pem").read_bytes()
    assert (
        x509.load_der_x509_certificate(der_path.read_bytes()).fingerprint(hashes.SHA256())
        == hashlib.sha256(store.ca_der()).digest()
    )
    assert b"PRIVATE" not in pem_path.read_bytes() + der_path.read_bytes()

    profile = apple_profile(store.ca_info())
    assert profile == apple_profile(CertStore(data_dir).ca_info())  # deterministic
    plist = plistlib.loads(profile)
    assert plist["PayloadType"] == "Configuration"
    (root,) = plist["PayloadContent"]
    assert root["PayloadType"] == "com.apple.security.root"
    assert root["PayloadContent"] == store.ca_der()
    assert uuid.UUID(root["PayloadUUID"]) != uuid.UUID(plist["PayloadUUID"])
    store.rotate()
    assert plistlib.loads(apple_profile(store.ca_info()))["PayloadUUID"] != plist["PayloadUUID"]


def test_host_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "Kiosk-1")
    assert net.host_names() == ["kiosk-1", "kiosk-1.local"]
    monkeypatch.setattr(socket, "gethostname", lambda: "kiosk.example.org")
    assert net.host_names() == ["kiosk.example.org"]
    monkeypatch.setattr(socket, "gethostname", lambda: "localhost")
    assert net.host_names() == []
    assert net.loopback_names() == ["localhost", "127.0.0.1", "::1"]


# -- --cert/--key ------------------------------------------------------------------------------


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


# -- a LAN address that appears, in a network namespace of the test's own ---------------------

NETNS_SCRIPT = textwrap.dedent(
    """
    import asyncio, ipaddress, pathlib, ssl, subprocess, sys
    import trustme
    from cryptography import x509
    from voicekiosk import net
    from voicekiosk.tls.context import prepare, server_context
    from voicekiosk.tls.leaf import server_cert
    from voicekiosk.tls.store import CertStore
    from voicekiosk.settings import Settings

    def ip(*args):
        subprocess.run(["ip", *args], check=True)

    data = pathlib.Path(sys.argv[1])
    ip("link", "set", "lo", "up")
    assert net.lan_addresses() == [], net.lan_addresses()
    before = server_cert(CertStore(data))
    assert "192.0.2.10" not in before.identities

    ip("link", "add", "vk0", "type", "veth", "peer", "name", "vk1")
    ip("addr", "add", "192.0.2.10/24", "dev", "vk0")
    ip("addr", "add", "2001:db8::10/64", "dev", "vk0", "nodad")
    ip("link", "set", "vk0", "up")
    ip("link", "set", "vk1", "up")
    assert net.lan_addresses() == ["192.0.2.10", "2001:db8::10"], net.lan_addresses()

    ctx = server_context(prepare(Settings(data_dir=data)))
    after = server_cert(CertStore(data))
    assert not after.reissued and after.serial != before.serial, (before, after)
    ext = x509.load_pem_x509_certificate(after.cert_path.read_bytes()).extensions
    ips = ext.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert {ipaddress.ip_address("192.0.2.10"), ipaddress.ip_address("2001:db8::10")} <= set(ips), ips

    async def fetch(host, cafile):
        client = ssl.create_default_context(cafile=cafile)
        reader, writer = await asyncio.open_connection(host, port, ssl=client, server_hostname=host)
        try:
            return await reader.read()
        finally:
            writer.close()

    async def answer(reader, writer):
        writer.write(b"ok")
        writer.close()

    async def main(host):
        global port
        server = await asyncio.start_server(answer, host, 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            assert await fetch(host, str(data / "ca.pem")) == b"ok"
            stranger = data.parent / "stranger.pem"
            trustme.CA().cert_pem.write_to_path(stranger)
            try:
                await fetch(host, str(stranger))
            except ssl.SSLCertVerificationError:
                pass
            else:
                raise AssertionError("a fresh CA verified our server")
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main("192.0.2.10"))
    asyncio.run(main("2001:db8::10"))

    ip("link", "set", "vk0", "down")
    assert "192.0.2.10" not in net.lan_addresses(), net.lan_addresses()
    gone = server_cert(CertStore(data))
    assert gone.reissued and "192.0.2.10" not in gone.identities
    print("netns ok")
    """
)


@pytest.fixture(scope="module")
def netns() -> Iterator[list[str]]:
    """The command prefix that runs a process in a new, empty network namespace."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not unshare or not ip:
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    require_namespaces()
    yield [unshare, "--net"]


def test_new_lan_address_is_covered_in_a_network_namespace(netns: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [*netns, sys.executable, "-W", "error", "-c", NETNS_SCRIPT, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "netns ok"
    # The namespace died with the process: nothing leaked into ours.
    assert "vk0" not in {name for _, name in socket.if_nameindex()}


# -- trust stores -------------------------------------------------------------------------------


@pytest.fixture
def fake_tools(tmp_path: Path) -> tuple[Path, Path]:
    """A bin/ of scripts that log how they were called; returns (bin dir, log file)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in ("certutil", "update-ca-certificates", "security"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "{name} $*" >> "{log}"\n')
        script.chmod(0o755)
    return bin_dir, log


def which_in(bin_dir: Path, *names: str) -> trust.Which:
    return lambda name: str(bin_dir / name) if name in names else None


@pytest.fixture
def ca_pem(store: CertStore) -> Path:
    store.ca()
    return store.ca_path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / ".pki" / "nssdb").mkdir(parents=True)
    (home / ".pki" / "nssdb" / "cert9.db").touch()
    (home / ".mozilla" / "firefox" / "abcd.default").mkdir(parents=True)
    (home / ".mozilla" / "firefox" / "abcd.default" / "cert9.db").touch()
    return home


def test_trust_installs_into_temp_stores(
    ca_pem: Path, home: Path, tmp_path: Path, fake_tools: tuple[Path, Path]
) -> None:
    bin_dir, log = fake_tools
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    real_anchors = sorted(trust.DEBIAN_ANCHORS.glob("*")) if trust.DEBIAN_ANCHORS.is_dir() else []
    nick = "voicekiosk CA " + sha256_fingerprint(ca_pem.read_bytes()).replace(":", "")[:8]

    steps = trust.trust_commands(
        ca_pem,
        home=home,
        system_dir=anchors,
        platform="linux",
        which=which_in(bin_dir, "certutil", "update-ca-certificates"),
        euid=os.geteuid(),
    )
    results = trust.install_trust(steps)
    assert [(r.step.store, r.status) for r in results] == [
        ("system CA store", "done"),
        ("Chrome/Chromium (NSS)", "done"),
        ("Firefox profile abcd.default", "done"),
    ], results
    assert (anchors / "voicekiosk.crt").read_bytes() == ca_pem.read_bytes()
    assert mode(anchors / "voicekiosk.crt") == 0o644
    ca = str(ca_pem.resolve())
    assert log.read_text().splitlines() == [
        "update-ca-certificates ",
        f"certutil -d sql:{home}/.pki/nssdb -A -t C,, -n {nick} -i {ca}",
        f"certutil -d sql:{home}/.mozilla/firefox/abcd.default -A -t C,, -n {nick} -i {ca}",
    ]
    assert real_anchors == (sorted(trust.DEBIAN_ANCHORS.glob("*")) if trust.DEBIAN_ANCHORS.is_dir() else [])


def test_trust_without_tools_or_rights_gives_commands(ca_pem: Path, home: Path, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    ca = str(ca_pem.resolve())
    steps = trust.trust_commands(
        ca_pem, home=home, system_dir=anchors, platform="linux", which=lambda _: None, euid=1000
    )
    results = trust.install_trust(steps)
    assert {r.status for r in results} == {"manual"}
    system, chrome, firefox = (r.step for r in results)
    assert system.shell() == (f"sudo install -m 0644 {ca} {anchors}/voicekiosk.crt && sudo update-ca-certificates")
    assert chrome.commands[0][:5] == ("certutil", "-d", f"sql:{home}/.pki/nssdb", "-A", "-t")
    assert "libnss3-tools" in chrome.note and firefox.note == chrome.note
    assert not list(anchors.iterdir())

    # certutil present, but the databases belong to someone else: not ours to write.
    steps = trust.trust_commands(
        ca_pem, home=home, system_dir=anchors, platform="linux", which=lambda n: f"/x/{n}", euid=4242
    )
    assert [s.runnable for s in steps] == [False, False, False]
    assert "run as the owner" in steps[1].note


def test_trust_creates_a_missing_chrome_nssdb(ca_pem: Path, tmp_path: Path, fake_tools: tuple[Path, Path]) -> None:
    bin_dir, _ = fake_tools
    home = tmp_path / "fresh-home"
    home.mkdir()
    which = which_in(bin_dir, "certutil", "chromium")
    steps = trust.trust_commands(ca_pem, home=home, system_dir=tmp_path / "none", platform="linux", which=which)
    (chrome,) = steps
    assert [c[:2] for c in chrome.commands] == [
        ("mkdir", "-p"),
        (str(bin_dir / "certutil"), "-d"),
        (str(bin_dir / "certutil"), "-d"),
    ]
    assert chrome.commands[1][2:] == (f"sql:{home}/.pki/nssdb", "-N", "--empty-password")
    results = trust.install_trust(steps)
    assert [r.status for r in results] == ["done"]
    assert (home / ".pki" / "nssdb").is_dir()


def test_trust_on_macos(ca_pem: Path, tmp_path: Path) -> None:
    ca = str(ca_pem.resolve())
    (step,) = trust.trust_commands(ca_pem, home=tmp_path, platform="darwin", which=lambda _: None, euid=501)
    assert not step.runnable
    assert step.shell() == (
        f"sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}"
    )
    (step,) = trust.trust_commands(ca_pem, home=tmp_path, platform="darwin", which=lambda n: f"/usr/bin/{n}", euid=0)
    assert step.runnable and step.commands[0][0] == "/usr/bin/security"


def test_trust_reports_a_failing_tool(ca_pem: Path, home: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "badbin"
    bin_dir.mkdir()
    (bin_dir / "certutil").write_text("#!/bin/sh\necho 'SEC_ERROR_BAD_DATABASE' >&2\nexit 255\n")
    (bin_dir / "certutil").chmod(0o755)
    steps = trust.trust_commands(
        ca_pem, home=home, system_dir=tmp_path / "none", platform="linux", which=which_in(bin_dir, "certutil")
    )
    results = trust.install_trust(steps)
    assert [r.status for r in results] == ["failed", "failed"]
    assert "exited 255: SEC_ERROR_BAD_DATABASE" in results[0].detail


def test_trust_needs_a_readable_ca(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="cannot read the CA certificate"):
        trust.trust_commands(tmp_path / "missing.pem")


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
