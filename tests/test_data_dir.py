"""The data directory holds the CA key and the access token: private, written safely, never stuck."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from voicekiosk import datadir
from voicekiosk.cli import cli
from voicekiosk.errors import StartupError


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory with a CA, a server certificate and a token in it, as voicekiosk makes them."""
    path = tmp_path / "data"
    assert run("cert", "--data-dir", str(path)).exit_code == 0
    assert run("token", "--data-dir", str(path)).exit_code == 0
    return path


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o770, 0o777])
@pytest.mark.parametrize("command", ["token", "cert"])
def test_a_directory_others_can_use_is_refused(data, mode, command):
    data.chmod(mode)
    result = run(command, "--data-dir", str(data))
    assert result.exit_code == 1
    assert f"run `chmod 700 {data}`" in result.output
    assert len(result.output.strip().splitlines()) == 1  # one line, no traceback


@pytest.mark.parametrize("name", datadir.KEY_FILES)
def test_a_key_file_others_can_read_is_refused(data, name):
    (data / name).chmod(0o640)
    result = run("cert", "--data-dir", str(data))
    assert result.exit_code == 1
    assert f"run `chmod 600 {data / name}`" in result.output
    (data / name).chmod(0o600)
    assert run("cert", "--data-dir", str(data)).exit_code == 0


def test_a_directory_of_another_user_is_refused(data):
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another user")
    os.chown(data, 65534, 65534)
    result = run("token", "--data-dir", str(data))
    assert result.exit_code == 1
    assert "belongs to another user (uid 65534)" in result.output and f"chown -R 0 {data}" in result.output


def test_a_damaged_token_is_an_error_not_a_new_token(data):
    token = data / "access-token"
    token.write_text("short\n")
    result = run("token", "--data-dir", str(data))
    assert result.exit_code == 1 and "is damaged" in result.output and "token --rotate" in result.output
    assert token.read_text() == "short\n"  # left for the operator to restore
    token.write_bytes(b"\xff" * 30)
    assert "Cannot read the access token" in run("token", "--data-dir", str(data)).output
    assert run("token", "--data-dir", str(data), "--rotate").exit_code == 0  # the way out


def test_a_token_that_cannot_be_read_is_an_error(data):
    token = data / "access-token"
    token.unlink()
    token.mkdir(mode=0o700)
    result = run("token", "--data-dir", str(data))
    assert result.exit_code == 1 and "Cannot read the access token" in result.output


def test_stale_temp_files_are_replaced_never_followed(data, tmp_path: Path):
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (data / ".access-token.tmp").symlink_to(victim)  # a planted link where the temp file goes
    (data / ".ca.pem.tmp").write_text("half-written before a crash")
    rotated = run("token", "--data-dir", str(data), "--rotate")
    assert rotated.exit_code == 0
    assert victim.read_text() == "untouched"
    assert (data / "access-token").read_text().strip() == rotated.stdout.strip()
    assert (data / "access-token").stat().st_mode & 0o777 == 0o600
    assert run("cert", "--data-dir", str(data), "rotate", "--yes").exit_code == 0
    assert not (data / ".access-token.tmp").exists() and not (data / ".ca.pem.tmp").exists()


def test_a_held_lock_times_out_with_a_clear_message(tmp_path: Path):
    datadir.ensure_dir(tmp_path / "data")
    holder = os.open(tmp_path / "data" / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another process, as far as flock is concerned
        started = time.monotonic()
        with (
            pytest.raises(StartupError, match="is locked by another voicekiosk process"),
            datadir.locked(tmp_path / "data", timeout=0.3),
        ):
            pass
        assert 0.3 <= time.monotonic() - started < 3
        fcntl.flock(holder, fcntl.LOCK_UN)
        with datadir.locked(tmp_path / "data", timeout=0.3):
            pass  # free again: taken at once
    finally:
        os.close(holder)
