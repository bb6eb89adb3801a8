"""``voicekiosk install-service``: the unit it writes passes systemd's own check, runs voicekiosk
with the key from a credential or a 0600 file (never in the unit, never on screen), and the
command says clearly when it cannot install."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REAL_KEY, ROOT
from voicekiosk.errors import StartupError
from voicekiosk.service.install import prepare_data_dir
from voicekiosk.service.unit import UnitSpec, render

# What each section of our units may hold, and which keys may repeat.
KEYS = {
    "Unit": {"Description", "After", "Wants", "PartOf"},
    "Service": {
        "Type", "NotifyAccess", "WatchdogSec", "ExecStart", "WorkingDirectory", "Restart", "RestartSec",
        "RestartPreventExitStatus", "KillMode", "TimeoutStopSec", "Environment", "LoadCredential", "User",
        "NoNewPrivileges", "ProtectSystem", "ProtectHome", "ReadWritePaths", "PrivateTmp", "SyslogIdentifier",
    },
    "Install": {"WantedBy"},
}  # fmt: skip
REPEATABLE = {"Environment"}


def parse(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file, strictly: known sections and keys, one assignment a line, no stray text."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if match := re.fullmatch(r"\[(\w+)\]", line):
            current = match.group(1)
            assert current in KEYS and current not in sections, line
            sections[current] = []
            continue
        key, sep, value = line.partition("=")
        assert current and sep and value and key in KEYS[current], line
        assert key in REPEATABLE or key not in dict(sections[current]), f"{key} twice"
        sections[current].append((key, value))
    assert list(sections) == ["Unit", "Service", "Install"]
    return sections


def spec(tmp_path: Path, *, kiosk: bool = False, system: bool = False) -> UnitSpec:
    (tmp_path / "data").mkdir(exist_ok=True)
    key = tmp_path / "openai-key"
    key.write_text(REAL_KEY + "\n")
    key.chmod(0o600)
    config = tmp_path / "voicekiosk.toml"
    config.write_text('model = "gpt-realtime-2.1"\n')
    return UnitSpec(
        kiosk=kiosk,
        system=system,
        python=Path(sys.executable).absolute(),
        config=config,
        data_dir=tmp_path / "data",
        workdir=tmp_path,
        key_file=key,
        user="daemon" if system else None,
        display={"DISPLAY": ":0"} if kiosk else {},
    )


KINDS = {"system": {"system": True}, "user": {}, "kiosk": {"kiosk": True}}


@pytest.mark.parametrize("kind", KINDS)
def test_systemd_finds_nothing_wrong_with_the_unit(tmp_path: Path, kind: str):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing (apt-get install systemd)")
        pytest.skip("systemd-analyze is missing: only the strict parse below checks the unit")
    unit = spec(tmp_path, **KINDS[kind])
    path = tmp_path / "units" / unit.name
    path.parent.mkdir()
    path.write_text(render(unit))
    runtime = tmp_path / "runtime"  # a user manager's, for --user
    runtime.mkdir(mode=0o700)
    scope = [] if unit.system else ["--user"]
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    done = subprocess.run([analyze, *scope, "verify", str(path)], capture_output=True, text=True, env=env)
    # It only warns about an unknown key or a missing program: any word from it is a failure.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize("kind", KINDS)
def test_the_unit_runs_voicekiosk_as_it_was_given_and_keeps_the_key_out(tmp_path: Path, kind: str):
    unit = spec(tmp_path, **KINDS[kind])
    text = render(unit)
    assert REAL_KEY not in text and "OPENAI_API_KEY" not in text
    service = parse(text)["Service"]
    values = dict(service)
    assert values["Type"] == "notify" and values["NotifyAccess"] == "main" and int(values["WatchdogSec"]) > 0
    assert values["Restart"] == "always" and values["RestartSec"]
    argv = shlex.split(values["ExecStart"].replace("%%", "%"))
    command = "kiosk" if unit.kiosk else "serve"
    assert argv == [sys.executable, "-m", "voicekiosk", command, "--config", str(unit.config), "--data-dir",
                    str(unit.data_dir)]  # fmt: skip
    env = dict(v.split("=", 1) for k, v in service if k == "Environment")
    if unit.system:
        assert values["LoadCredential"] == f"openai:{unit.key_file}"
        assert env["VOICEKIOSK_API_KEY_FILE"] == "%d/openai"
        assert values["User"] == "daemon" and values["ProtectSystem"] == "strict"
        assert values["ReadWritePaths"] == str(unit.data_dir) and values["PrivateTmp"] == "yes"
        # What systemd does with the credential: a copy in the service's own directory (%d).
        credentials = tmp_path / "credentials"
        credentials.mkdir()
        shutil.copy(unit.key_file, credentials / "openai")
        env["VOICEKIOSK_API_KEY_FILE"] = str(credentials / "openai")
    else:
        assert "LoadCredential" not in values and env["VOICEKIOSK_API_KEY_FILE"] == str(unit.key_file)
    if unit.kiosk:
        assert env["DISPLAY"] == ":0" and "ProtectSystem" not in values  # Chromium's sandbox, the X socket
        assert dict(parse(text)["Install"])["WantedBy"] == "graphical-session.target"
    # The command as systemd runs it (`config` for `serve`: what it would run with) finds the key.
    clean = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY" and not k.startswith("VOICEKIOSK_")}
    shown = subprocess.run(
        [*argv[:3], "config", *argv[4:]], cwd=values["WorkingDirectory"], env={**clean, **env, "COLUMNS": "300"},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert re.search(rf"\napi_key +sk-…9z8y +file {re.escape(env['VOICEKIOSK_API_KEY_FILE'])} *\n", shown), shown
    assert REAL_KEY not in shown


def test_a_path_a_unit_cannot_hold_is_refused(tmp_path: Path):
    result = cli(tmp_path, "--user", "--dry-run", "--data-dir", str(tmp_path / "my kiosk"), OPENAI_API_KEY=REAL_KEY)
    assert result.returncode == 2 and "cannot go into a systemd unit" in result.stderr
    odd = tmp_path / "100%"  # a specifier to systemd: written %%
    odd.mkdir()
    assert f"--data-dir {tmp_path}/100%%/data\n" in render(spec(odd))


# -- the command ----------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str, path: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """``voicekiosk install-service`` with its home (and unit directory) under ``tmp_path``."""
    base = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY" and not k.startswith(("VOICEKIOSK_", "SUDO_"))}
    home = tmp_path / "home"
    base |= {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PATH": path or base["PATH"]}
    return subprocess.run(
        [sys.executable, "-m", "voicekiosk", "install-service", *args], cwd=tmp_path, env={**base, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def fake_systemctl(tmp_path: Path, body: str = "exit 0") -> str:
    """A ``systemctl`` that logs its arguments: a PATH to run the command with."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "systemctl.log"}\n{body}\n')
    script.chmod(0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


def test_a_dry_run_prints_the_unit_and_writes_nothing(tmp_path: Path):
    result = cli(tmp_path, "--user", "--dry-run", "--data-dir", "data", OPENAI_API_KEY=REAL_KEY)
    assert result.returncode == 0, result.stderr
    assert REAL_KEY not in result.stdout + result.stderr
    unit = tmp_path / "home/.config/systemd/user/voicekiosk.service"
    assert f"# {unit}\n" in result.stdout and "[Service]" in result.stdout
    assert f"ExecStart={sys.executable} -m voicekiosk serve --data-dir {tmp_path / 'data'}\n" in result.stdout
    assert f"write the key (now in OPENAI_API_KEY) to {tmp_path / 'data/openai-key'}, mode 0600" in result.stdout
    assert "systemctl --user daemon-reload && systemctl --user enable --now voicekiosk.service" in result.stdout
    assert "sudo loginctl enable-linger" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no data dir, no home, no unit


def test_the_kiosks_dry_run_says_how_to_log_in_at_boot(tmp_path: Path):
    result = cli(tmp_path, "--kiosk", "--dry-run", "--data-dir", "data", OPENAI_API_KEY=REAL_KEY, DISPLAY=":7")
    assert result.returncode == 0, result.stderr
    assert "voicekiosk-kiosk.service" in result.stdout and "Environment=DISPLAY=:7\n" in result.stdout
    assert "raspi-config nonint do_boot_behaviour B4" in result.stdout and "autologin-user=" in result.stdout


def test_install_writes_the_key_and_the_unit_then_enables_it(tmp_path: Path):
    path = fake_systemctl(tmp_path)
    for _ in range(2):  # and again: the same files, replaced
        result = cli(tmp_path, "--user", "--data-dir", "data", path=path, OPENAI_API_KEY=REAL_KEY)
        assert result.returncode == 0, result.stderr
    assert REAL_KEY not in result.stdout + result.stderr
    key = tmp_path / "data/openai-key"
    assert key.read_text() == REAL_KEY + "\n" and key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    unit = tmp_path / "home/.config/systemd/user/voicekiosk.service"
    assert f"Environment=VOICEKIOSK_API_KEY_FILE={key}\n" in unit.read_text()
    assert f"Wrote the key (from OPENAI_API_KEY) to {key}, mode 0600." in result.stdout
    assert "journalctl --user -u voicekiosk.service" in result.stdout
    calls = ["--user show-environment", "--user daemon-reload", "--user enable --now voicekiosk.service"]
    assert (tmp_path / "systemctl.log").read_text().splitlines() == calls * 2


def test_a_key_file_is_named_not_copied_and_must_be_private(tmp_path: Path):
    key = tmp_path / "key"
    key.write_text(REAL_KEY)
    key.chmod(0o644)
    (tmp_path / "voicekiosk.toml").write_text(f'api_key_file = "{key}"\n')
    result = cli(tmp_path, "--user", "--dry-run")
    assert result.returncode == 1 and f"run `chmod 600 {key}`" in result.stderr
    key.chmod(0o600)
    result = cli(tmp_path, "--user", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"--config {tmp_path / 'voicekiosk.toml'} " in result.stdout  # found here: named absolutely
    assert f"VOICEKIOSK_API_KEY_FILE={key}\n" in result.stdout and "write the key" not in result.stdout


def test_a_system_unit_gets_the_key_as_a_credential_and_runs_as_the_sudo_user(tmp_path: Path):
    result = cli(tmp_path, "--system", "--dry-run", "--data-dir", "data", OPENAI_API_KEY=REAL_KEY, SUDO_USER="daemon")
    assert result.returncode == 0, result.stderr
    assert "# /etc/systemd/system/voicekiosk.service" in result.stdout
    assert f"LoadCredential=openai:{tmp_path / 'data/openai-key'}\n" in result.stdout
    assert "User=daemon\n" in result.stdout and "journalctl -u voicekiosk.service" in result.stdout
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "env", "code", "said"),
    [
        (["--user"], {}, 1, "no OpenAI API key to give the service: set OPENAI_API_KEY"),
        (["--kiosk", "--system"], {"OPENAI_API_KEY": REAL_KEY}, 2, "--kiosk runs in the desktop session"),
        (["--system"], {"OPENAI_API_KEY": REAL_KEY, "SUDO_USER": "root"}, 1, "should not run as root"),
        (["--system"], {"OPENAI_API_KEY": REAL_KEY, "SUDO_USER": "nobody-here"}, 1, "no such user: nobody-here"),
    ],
    ids=["no-key", "kiosk-system", "root", "no-user"],
)
def test_what_cannot_be_installed_is_said(tmp_path: Path, args: list[str], env: dict[str, str], code: int, said: str):
    result = cli(tmp_path, *args, "--data-dir", "data", path=fake_systemctl(tmp_path), **env)
    assert (result.returncode, said in result.stderr) == (code, True), result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "systemctl.log").exists()
    assert not (tmp_path / "data").exists()


def test_no_systemd_is_said_and_nothing_is_written(tmp_path: Path):
    bare = tmp_path / "bare"  # a PATH without systemctl
    bare.mkdir()
    result = cli(tmp_path, "--user", "--data-dir", "data", path=str(bare), OPENAI_API_KEY=REAL_KEY)
    assert result.returncode == 1 and "this machine does not run systemd" in result.stderr
    refusing = fake_systemctl(tmp_path, 'echo "Failed to connect to bus: No medium found\x1b[2J" >&2; exit 1')
    result = cli(tmp_path, "--user", "--data-dir", "data", path=refusing, OPENAI_API_KEY=REAL_KEY)
    assert result.returncode == 1 and "systemd is not running here" in result.stderr
    assert "Failed to connect to bus: No medium found\\x1b[2J" in result.stderr  # its words, escaped
    assert not (tmp_path / "data").exists() and not (tmp_path / "home").exists()


def test_a_system_unit_needs_root(tmp_path: Path):
    tmp_path.chmod(0o777)  # the unprivileged user below runs in it
    path = fake_systemctl(tmp_path)
    (tmp_path / "bin").chmod(0o755)
    args = ["--system", "--data-dir", "data"]
    env = {"OPENAI_API_KEY": REAL_KEY, "SUDO_USER": "daemon"}
    if os.geteuid() == 0:  # as nobody, then
        base = {**os.environ, **env, "PATH": path, "HOME": str(tmp_path)}
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "voicekiosk"]
        result = subprocess.run(
            [*command, "install-service", *args], cwd=tmp_path, env=base, capture_output=True, text=True
        )
    else:
        result = cli(tmp_path, *args, path=path, **env)
    assert result.returncode == 1 and "--system writes /etc/systemd/system: run it with sudo" in result.stderr
    assert not (tmp_path / "data").exists()


def test_a_system_units_data_directory_is_made_for_its_user(tmp_path: Path):
    """As root: the folders made on the way belong to the service's user, not root."""
    if os.geteuid() != 0:
        pytest.skip("needs root, as `sudo voicekiosk install-service --system` has")
    daemon = pwd.getpwnam("daemon")
    data = tmp_path / "home/.local/share/voicekiosk"
    prepare_data_dir(data, daemon)
    for folder in (tmp_path / "home/.local", tmp_path / "home/.local/share", data):
        assert folder.stat().st_uid == daemon.pw_uid
    assert data.stat().st_mode & 0o777 == 0o700 and tmp_path.stat().st_uid == 0
    prepare_data_dir(data, daemon)  # there already, and its: fine
    with pytest.raises(StartupError, match=r"is not daemon's, who runs the service: `chown -R daemon "):
        prepare_data_dir(tmp_path, daemon)


def test_the_readme_shows_the_unit_install_service_writes():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "Environment=OPENAI_API_KEY" not in readme
    [block] = [b for b in re.findall(r"```ini\n(.*?)```", readme, re.S) if "[Service]" in b]
    example = UnitSpec(
        kiosk=False,
        system=True,
        python=Path("/opt/voicekiosk/.venv/bin/python"),
        config=Path("/etc/voicekiosk.toml"),
        data_dir=Path("/home/kiosk/.local/share/voicekiosk"),
        workdir=Path("/home/kiosk"),
        key_file=Path("/home/kiosk/.local/share/voicekiosk/openai-key"),
        user="kiosk",
    )
    assert block == render(example)
