"""``voicekiosk install-service``: where the unit goes, where the key comes from, writing both,
and ``systemctl daemon-reload && enable --now``.

The key is never written into the unit (``systemctl cat`` shows a unit to every user) nor shown:
a system unit gets it as a credential (``LoadCredential=``) from a 0600 file; a user unit names
a 0600 file. A key that is only in ``OPENAI_API_KEY`` now is written to such a file first.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from voicekiosk import datadir
from voicekiosk.errors import StartupError
from voicekiosk.logsafe import escape
from voicekiosk.service.unit import KEY_FILE_VARIABLE, UnitSpec, render
from voicekiosk.settings import Settings

KEY_FILE = "openai-key"  # in the data directory, when the key came from the environment
SYSTEM_UNITS = Path("/etc/systemd/system")
DISPLAY_VARIABLES = ("DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY")
# Settings the unit carries itself (the config file and data directory are its arguments).
CARRIED = {"VOICEKIOSK_CONFIG", "VOICEKIOSK_DATA_DIR", KEY_FILE_VARIABLE}


@dataclass(frozen=True)
class Plan:
    """What installing does: the unit and where it goes, and the key to write (None: its file is there)."""

    spec: UnitSpec
    path: Path
    key: str | None
    notes: tuple[str, ...] = ()

    @property
    def systemctl(self) -> list[str]:
        return ["systemctl"] if self.spec.system else ["systemctl", "--user"]

    @property
    def text(self) -> str:
        return render(self.spec)


def plan(settings: Settings, *, kiosk: bool, system: bool, environ: Mapping[str, str] = os.environ) -> Plan:
    """Work out the unit for ``settings`` (its config file and data directory, made absolute).

    Raises:
      StartupError: no key to give the service, a key file others can read, a system unit that
        would run as root, or a path a unit cannot hold.
    """
    user = _service_user(environ) if system else None
    data_dir = settings.data_dir.expanduser().absolute()
    if system and "data_dir" not in settings.sources:  # sudo's default is root's: the user's own
        data_dir = Path(pwd.getpwnam(user or "").pw_dir) / ".local/share/voicekiosk"
    notes = []
    key_file, key = _key_source(settings, data_dir, system)
    display = {name: environ[name] for name in DISPLAY_VARIABLES if kiosk and environ.get(name)}
    if kiosk and not (display.get("DISPLAY") or display.get("WAYLAND_DISPLAY")):
        display["DISPLAY"] = ":0"
        notes.append("no DISPLAY here: the kiosk will show on :0, the first display")
    left = sorted(name for name in environ if name.startswith("VOICEKIOSK_") and name not in CARRIED)
    if left:
        notes.append(f"not carried into the unit (put them in the config file): {', '.join(left)}")
    spec = UnitSpec(
        kiosk=kiosk,
        system=system,
        python=Path(sys.executable).absolute(),  # a virtualenv's python: never resolved out of it
        config=settings.config_path.absolute() if settings.config_path else None,
        data_dir=data_dir,
        workdir=Path.cwd(),
        key_file=key_file,
        user=user,
        display=display,
    )
    render(spec)  # a path it cannot hold fails now, before anything is written
    return Plan(spec, _unit_dir(system, environ) / spec.name, key, tuple(notes))


def install(plan: Plan) -> None:
    """Write the key (if it came from the environment) and the unit, then reload and enable it.

    Raises:
      StartupError: no systemd, not root for a system unit, a file that cannot be written, or
        systemctl refusing (its own words, escaped).
    """
    check_systemd(plan)
    spec = plan.spec
    owner = pwd.getpwnam(spec.user) if spec.user else None
    prepare_data_dir(spec.data_dir, owner)
    try:
        if plan.key is not None:
            datadir.write_atomic(spec.key_file, plan.key.encode() + b"\n", 0o600)
            if owner:
                os.chown(spec.key_file, owner.pw_uid, owner.pw_gid)
        plan.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot write {exc.filename}: {exc.strerror or exc}") from None
    datadir.write_atomic(plan.path, plan.text.encode(), 0o644)
    _systemctl(plan, "daemon-reload")
    _systemctl(plan, "enable", "--now", spec.name)


def check_systemd(plan: Plan) -> None:
    """Refuse, saying why, where this cannot work: no systemd, or not root for a system unit."""
    if shutil.which("systemctl") is None:
        raise StartupError(
            "systemctl is not here: this machine does not run systemd. Run `voicekiosk serve` "
            "under whatever starts services here, or see `voicekiosk install-service --dry-run`."
        )
    if plan.spec.system and os.geteuid() != 0:
        raise StartupError(f"--system writes {SYSTEM_UNITS}: run it with sudo (or install a --user unit instead)")
    _systemctl(plan, "show-environment", probe=True)


def next_steps(plan: Plan) -> list[str]:
    """How to check on it, read its log, and have it start at boot."""
    spec, user = plan.spec, plan.spec.user or _current_user()
    scope = "" if spec.system else " --user"
    steps = [
        f"check it:   systemctl{scope} status {spec.name}",
        f"its log:    journalctl{scope} -u {spec.name} -f",
        f"stop it:    systemctl{scope} disable --now {spec.name}",
    ]
    if spec.kiosk:
        steps += [
            f"at boot, {user} must be logged in to the desktop:",
            "  Raspberry Pi OS: sudo raspi-config nonint do_boot_behaviour B4   (desktop, logged in)",
            f"  Debian (LightDM): in /etc/lightdm/lightdm.conf, under [Seat:*]: autologin-user={user}",
            "  and the desktop must start graphical-session.target: "
            "systemctl --user is-active graphical-session.target",
        ]
    elif not spec.system:
        steps.append(f"at boot, without anyone logging in: sudo loginctl enable-linger {user}")
    return steps


def _service_user(environ: Mapping[str, str]) -> str:
    """Who a system unit runs as: whoever ran sudo (never root)."""
    name = environ.get("SUDO_USER") or _current_user()
    if name == "root":
        raise StartupError(
            "a system service should not run as root: run `sudo voicekiosk install-service --system` "
            "from the account it should run as"
        )
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise StartupError(f"no such user: {escape(name)}") from None
    return name


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _key_source(settings: Settings, data_dir: Path, system: bool) -> tuple[Path, str | None]:
    """The key file the unit names, and the key to write to it (None: it is there already)."""
    source = settings.sources.get("api_key", "")
    if source.startswith("env") and settings.api_key:
        return data_dir / KEY_FILE, settings.api_key
    if settings.api_key_file is not None and settings.api_key:
        path = settings.api_key_file.expanduser().absolute()
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError as exc:
            raise StartupError(f"api_key_file: cannot check {path}: {exc.strerror or exc}") from None
        if mode & 0o077:
            raise StartupError(f"{path} can be read by other users (mode {mode:o}): run `chmod 600 {path}`")
        return path, None
    keep = "sudo --preserve-env=OPENAI_API_KEY voicekiosk install-service --system" if system else "it"
    raise StartupError(
        "no OpenAI API key to give the service: set OPENAI_API_KEY and run "
        f"{keep} again (the key is then written to {data_dir / KEY_FILE}, mode 0600), "
        "or set api_key_file in the config file to a file holding the key alone (chmod 600)"
    )


def _unit_dir(system: bool, environ: Mapping[str, str]) -> Path:
    if system:
        return SYSTEM_UNITS
    config = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".config")
    return Path(config) / "systemd/user"


def prepare_data_dir(path: Path, owner: pwd.struct_passwd | None) -> None:
    """The data directory, made if missing (0700), and the service user's: made by root for a
    system unit, it and any folder made on the way are given to ``owner``.

    Raises:
      StartupError: it cannot be made, or it is someone else's.
    """
    if owner is None:
        datadir.ensure_dir(path)
        return
    try:
        for folder in reversed([p for p in (path, *path.parents) if not p.exists()]):
            folder.mkdir(mode=0o700 if folder == path else 0o755)
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        path.chmod(0o700)  # mkdir's mode is filtered by the umask
        ours = path.stat().st_uid == owner.pw_uid
    except OSError as exc:
        raise StartupError(f"--data-dir: cannot create {path}: {exc.strerror or exc}") from None
    if not ours:
        raise StartupError(f"{path} is not {owner.pw_name}'s, who runs the service: `chown -R {owner.pw_name} {path}`")


def _systemctl(plan: Plan, *args: str, probe: bool = False) -> None:
    command = [*plan.systemctl, *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StartupError(f"`{' '.join(command)}` failed: {exc}") from None
    if done.returncode == 0:
        return
    said = escape(done.stderr.strip()[-500:]) or f"exit code {done.returncode}"
    if probe:
        hint = "" if plan.spec.system else " (log in as that user, not with su; or use --system)"
        raise StartupError(f"systemd is not running here{hint}: {said}")
    raise StartupError(f"`{' '.join(command)}` failed: {said}")
