"""Installing the CA into trust stores: temporary stores and logging stand-ins for the tools."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.certs import mode
from voicekiosk.errors import StartupError
from voicekiosk.tls import trust
from voicekiosk.tls.certificates import sha256_fingerprint
from voicekiosk.tls.store import CertStore

pytestmark = pytest.mark.usefixtures("no_lan")  # never the machine's real LAN addresses


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


@pytest.fixture
def anchors(tmp_path: Path) -> Path:
    """Stands in for Debian's directory of extra CA certificates."""
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    return anchors


def test_trust_installs_into_temp_stores(
    ca_pem: Path, home: Path, anchors: Path, fake_tools: tuple[Path, Path]
) -> None:
    bin_dir, log = fake_tools
    real_anchors = sorted(trust.DEBIAN_ANCHORS.glob("*")) if trust.DEBIAN_ANCHORS.is_dir() else []
    nick = "voicekiosk CA " + sha256_fingerprint(ca_pem.read_bytes()).replace(":", "")[:8]

    steps = trust.trust_commands(
        ca_pem,
        home=home,
        system_dir=anchors,
        platform="linux",
        which=which_in(bin_dir, "certutil", "update-ca-certificates"),
        euid=os.geteuid(),
        system=True,
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


def test_trust_without_tools_or_rights_gives_commands(ca_pem: Path, home: Path, anchors: Path) -> None:
    ca = str(ca_pem.resolve())
    steps = trust.trust_commands(
        ca_pem, home=home, system_dir=anchors, platform="linux", which=lambda _: None, euid=1000, system=True
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
        ca_pem, home=home, system_dir=anchors, platform="linux", which=lambda n: f"/x/{n}", euid=4242, system=True
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
        f"sudo security add-trusted-cert -d -r trustRoot -p ssl -k /Library/Keychains/System.keychain {ca}"
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


def test_the_system_store_only_when_asked(
    ca_pem: Path, home: Path, anchors: Path, fake_tools: tuple[Path, Path]
) -> None:
    """curl, apt and pip trust the system store for everything: browsers are enough by default."""
    bin_dir, _ = fake_tools
    which = which_in(bin_dir, "certutil", "update-ca-certificates")
    stores = [
        s.store for s in trust.trust_commands(ca_pem, home=home, system_dir=anchors, platform="linux", which=which)
    ]
    assert "system CA store" not in stores and "Chrome/Chromium (NSS)" in stores
    asked = trust.trust_commands(ca_pem, home=home, system_dir=anchors, platform="linux", which=which, system=True)
    assert asked[0].store == "system CA store"
