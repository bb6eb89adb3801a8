"""Make this machine trust the local CA, for websites only: Chrome's and Firefox's NSS databases
(``C,,``: TLS servers, not mail or code), the macOS System keychain with the SSL policy alone,
and, only when asked, the Linux system store (which curl, apt and pip use for everything).
Where a tool is missing or we lack the rights, the exact command to run is given instead.

Every location is a parameter, so tests point it all at a temporary directory.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voicekiosk.browsers import BROWSERS
from voicekiosk.errors import StartupError
from voicekiosk.tls.certificates import sha256_fingerprint

DEBIAN_ANCHORS = Path("/usr/local/share/ca-certificates")
MACOS_KEYCHAIN = "/Library/Keychains/System.keychain"
NSS_HINT = "certutil is missing: install libnss3-tools (Debian/Ubuntu) or nss-tools (Fedora), or run"

Which = Callable[[str], "str | None"]
Commands = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Step:
    """One trust store and the commands that add the CA to it."""

    store: str
    commands: Commands
    runnable: bool  # the tools exist and we may write there
    note: str = ""  # why not runnable

    def shell(self) -> str:
        """The commands as one copyable shell line."""
        return " && ".join(shlex.join(command) for command in self.commands)


@dataclass(frozen=True)
class TrustResult:
    """What became of one step: ``done``, ``failed``, or ``manual`` (run ``step.shell()``)."""

    step: Step
    status: Literal["done", "failed", "manual"]
    detail: str = ""


def trust_commands(
    ca_pem_path: Path,
    *,
    home: Path | None = None,
    system_dir: Path = DEBIAN_ANCHORS,
    platform: str = sys.platform,
    which: Which = shutil.which,
    euid: int | None = None,
    system: bool = False,
) -> list[Step]:
    """The steps that make this machine trust the CA in ``ca_pem_path`` for websites.

    Args:
      ca_pem_path: The CA certificate (PEM).
      system: Also Linux's system-wide store (``voicekiosk trust --system``).
      home: The user whose browsers should trust it (default: ``Path.home()``).
      system_dir: Debian/Ubuntu's directory of extra CA certificates.
      platform: ``sys.platform`` value to plan for.
      which: Finds a tool's path, or None (``shutil.which``).
      euid: Effective user id (default: this process's).

    Raises:
      StartupError: ``ca_pem_path`` is not a readable PEM certificate.
    """
    try:
        fingerprint = sha256_fingerprint(ca_pem_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot read the CA certificate {ca_pem_path}: {exc}") from None
    ca = str(ca_pem_path.resolve())
    home = Path.home() if home is None else home
    euid = os.geteuid() if euid is None else euid
    if platform == "darwin":
        security = which("security")
        # -p ssl: trusted to identify websites, and for nothing else (mail, code signing, ...).
        command = (
            security or "security",
            "add-trusted-cert",
            "-d",
            "-r",
            "trustRoot",
            "-p",
            "ssl",
            "-k",
            MACOS_KEYCHAIN,
        )
        runnable = security is not None and euid == 0
        return [_step("macOS System keychain", ((*command, ca),), runnable, "needs an administrator", euid)]
    if not platform.startswith("linux"):
        return []

    steps: list[Step] = []
    updater = which("update-ca-certificates")
    if system and (updater or system_dir.is_dir()):
        dest = str(system_dir / "voicekiosk.crt")
        commands: Commands = (("install", "-m", "0644", ca, dest), (updater or "update-ca-certificates",))
        note = "needs root" if updater else "update-ca-certificates is missing (install ca-certificates)"
        runnable = updater is not None and euid == 0
        steps.append(_step("system CA store", commands, runnable, note, euid))

    # NSS nicknames must be unique per certificate; the fingerprint keeps a rotated CA apart.
    nickname = f"voicekiosk CA {fingerprint.replace(':', '')[:8]}"
    certutil = which("certutil")
    tool = certutil or "certutil"
    add = ("-A", "-t", "C,,", "-n", nickname, "-i", ca)
    nssdb = home / ".pki" / "nssdb"
    if nssdb.is_dir() or any(which(name) for name in BROWSERS):
        nss: Commands = ((tool, "-d", f"sql:{nssdb}", *add),)
        if not (nssdb / "cert9.db").exists():
            create = (("mkdir", "-p", str(nssdb)), (tool, "-d", f"sql:{nssdb}", "-N", "--empty-password"))
            nss = create + nss
        steps.append(_browser_step("Chrome/Chromium (NSS)", nss, certutil, nssdb, euid))
    profiles = [home / ".mozilla" / "firefox", home / "snap" / "firefox" / "common" / ".mozilla" / "firefox"]
    for db in sorted(p for base in profiles for p in base.glob("*/cert9.db")):
        firefox: Commands = ((tool, "-d", f"sql:{db.parent}", *add),)
        steps.append(_browser_step(f"Firefox profile {db.parent.name}", firefox, certutil, db.parent, euid))
    return steps


def _step(store: str, commands: Commands, runnable: bool, note: str, euid: int) -> Step:
    """A system-wide step; when we may not run it, the commands get ``sudo``."""
    if runnable:
        return Step(store, commands, True)
    if euid != 0:
        commands = tuple(("sudo", *command) for command in commands)
    return Step(store, commands, False, note)


def _browser_step(store: str, commands: Commands, certutil: str | None, db: Path, euid: int) -> Step:
    """A per-user step, run only as the owner of the database (root must not take it over)."""
    if certutil is None:
        return Step(store, commands, False, NSS_HINT)
    existing = next(p for p in (db, *db.parents) if p.exists())
    owner = existing.stat().st_uid
    if owner != euid:
        return Step(store, commands, False, f"run as the owner of {existing} (uid {owner})")
    return Step(store, commands, True)


def install_trust(steps: Iterable[Step]) -> list[TrustResult]:
    """Run each of ``steps`` (from `trust_commands`) that can run here; report the others as manual."""
    results = []
    for step in steps:
        if not step.runnable:
            results.append(TrustResult(step, "manual", step.note))
            continue
        for command in step.commands:
            try:
                proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                results.append(TrustResult(step, "failed", f"{shlex.join(command)}: {exc}"))
                break
            if proc.returncode != 0:
                output = (proc.stderr or proc.stdout).strip().splitlines()
                detail = f"{shlex.join(command)} exited {proc.returncode}: {' '.join(output[-2:])}"
                results.append(TrustResult(step, "failed", detail))
                break
        else:
            results.append(TrustResult(step, "done"))
    return results
