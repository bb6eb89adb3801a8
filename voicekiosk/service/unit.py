"""The systemd unit that runs ``voicekiosk serve`` (or ``kiosk``): what it runs, how it stays up,
how it gets the API key (never in the unit: ``LoadCredential=`` or a 0600 file it names), and
hardening that does not break it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from voicekiosk.errors import ConfigError

WATCHDOG_SEC = 30  # systemd restarts a service whose event loop has not pinged for this long
RESTART_SEC = 5
CREDENTIAL = "openai"  # the credential's name: the service reads %d/openai
KEY_FILE_VARIABLE = "VOICEKIOSK_API_KEY_FILE"
# Characters a path may not hold to be written into a unit as it is (systemd splits on white
# space and reads quotes and backslashes; control characters would end the line).
UNSAFE = re.compile(r"[\s\"'\\\x00-\x1f\x7f]")


@dataclass(frozen=True, kw_only=True)
class UnitSpec:
    """What the unit runs and how.

    Args:
      kiosk: ``voicekiosk kiosk`` in the desktop session (a user unit) instead of ``serve``.
      system: a system unit (runs as ``user``, gets the key as a credential); else a user unit.
      python: the interpreter voicekiosk is installed for (its virtualenv's, unresolved).
      config: the config file, if any; data_dir: the data directory (both absolute).
      workdir: where relative paths in the config resolve, as when the command was given.
      key_file: the file that holds the API key alone (mode 0600).
      user: who a system unit runs as.
      display: the desktop session's variables a kiosk needs (DISPLAY, WAYLAND_DISPLAY, ...).
    """

    kiosk: bool
    system: bool
    python: Path
    config: Path | None
    data_dir: Path
    workdir: Path
    key_file: Path
    user: str | None = None
    display: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "voicekiosk-kiosk.service" if self.kiosk else "voicekiosk.service"

    @property
    def command(self) -> str:
        return "kiosk" if self.kiosk else "serve"


def render(spec: UnitSpec) -> str:
    """The unit file's text.

    Raises:
      ConfigError: a path or value cannot be written into a unit as it is.
    """
    args = [str(spec.python), "-m", "voicekiosk", spec.command]
    if spec.config:
        args += ["--config", str(spec.config)]
    args += ["--data-dir", str(spec.data_dir)]
    lines = [
        f"# {spec.name}: written by `voicekiosk install-service`; run that again rather than edit this.",
        "[Unit]",
        f"Description=voicekiosk {spec.command}: a talking OpenAI agent"
        + (" on this screen" if spec.kiosk else " for the screens around"),
        *_after(spec),
        "",
        "[Service]",
        "# voicekiosk tells systemd it is ready once it listens, and pings the watchdog from its",
        "# event loop: a loop stuck for WatchdogSec is restarted.",
        "Type=notify",
        "NotifyAccess=main",
        f"WatchdogSec={WATCHDOG_SEC}",
        f"ExecStart={' '.join(_value(arg, 'ExecStart').replace('$', '$$') for arg in args)}",
        f"WorkingDirectory={_value(spec.workdir, 'WorkingDirectory')}",
        "Restart=always",
        f"RestartSec={RESTART_SEC}",
        "# Exit code 2 is a bad configuration: starting again would not mend it.",
        "RestartPreventExitStatus=2",
        "# voicekiosk hangs up its calls and ends its browser itself; the rest get SIGKILL after.",
        "KillMode=mixed",
        "TimeoutStopSec=30",
        "Environment=PYTHONUNBUFFERED=1",
        "SyslogIdentifier=voicekiosk",  # not "python", in the journal
        *_key(spec),
        *_hardening(spec),
        *(f"Environment={name}={_value(value, name)}" for name, value in spec.display.items()),
        "",
        "[Install]",
        f"WantedBy={_wanted_by(spec)}",
    ]
    return "\n".join(lines) + "\n"


def _after(spec: UnitSpec) -> list[str]:
    if spec.kiosk:  # started with the desktop session, and stopped with it
        return ["After=graphical-session.target", "PartOf=graphical-session.target"]
    if spec.system:  # a user manager does not see the system's network targets
        return ["After=network-online.target", "Wants=network-online.target"]
    return []


def _key(spec: UnitSpec) -> list[str]:
    key_file = _value(spec.key_file, "the key file")
    if spec.system:
        # systemd copies the root-only file into a directory only this service can read (%d).
        return [f"LoadCredential={CREDENTIAL}:{key_file}", f"Environment={KEY_FILE_VARIABLE}=%d/{CREDENTIAL}"]
    return [f"Environment={KEY_FILE_VARIABLE}={key_file}"]


def _hardening(spec: UnitSpec) -> list[str]:
    if spec.kiosk:
        return [
            "# No sandboxing here: Chromium's own sandbox needs to gain privileges, and the display's",
            "# socket is in /tmp.",
        ]
    if not spec.system:
        return [
            "# A user manager sandboxes only with user namespaces, which some systems refuse: no more.",
            "NoNewPrivileges=yes",
        ]
    return [
        f"User={_value(spec.user or '', 'User')}",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        f"ReadWritePaths={_value(spec.data_dir, 'ReadWritePaths')}",
        "PrivateTmp=yes",
    ]


def _wanted_by(spec: UnitSpec) -> str:
    if spec.kiosk:
        return "graphical-session.target"
    return "multi-user.target" if spec.system else "default.target"


def _value(value: Path | str, what: str) -> str:
    """``value`` as a unit may hold it: ``%`` escaped; refused if it would need quoting."""
    text = str(value)
    if not text or UNSAFE.search(text):
        raise ConfigError(
            f"{what}: {text!r} cannot go into a systemd unit (no spaces, quotes, backslashes or "
            "control characters): move it to a plainer path"
        )
    return text.replace("%", "%%")
