"""The data directory: private (0700, ours), its files written atomically, its writers serialised.

It holds the CA key, which can vouch for this kiosk to every phone that trusted it, and the
access token: voicekiosk refuses to use it while another user could read or change them.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from voicekiosk.errors import StartupError

# The secrets kept here (the CA's and the server's private keys, the access token).
KEY_FILES = ("ca-key.pem", "server-key.pem", "access-token")
LOCK_TIMEOUT = 5.0  # seconds to wait for another process working on the directory


def ensure_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) if it is missing; check that it and its key files are private.

    Raises:
      StartupError: it cannot be created, is not a directory, or another user could read or
        change it or a key file in it (the message says the command that fixes it).
    """
    try:
        if not path.exists():
            path.mkdir(parents=True, mode=0o700)
            path.chmod(0o700)  # mkdir's mode is filtered by the umask
        elif not path.is_dir():
            raise StartupError(f"--data-dir: {path} is not a directory")
    except OSError as exc:
        raise StartupError(f"--data-dir: cannot create {path}: {exc.strerror or exc}") from None
    check_private(path, "700")
    for name in KEY_FILES:
        if (path / name).exists():
            check_private(path / name, "600")


def check_private(path: Path, mode: str) -> None:
    """Refuse ``path`` if another user owns it or its mode lets others read or write it.

    Raises:
      StartupError: naming the command that fixes it (``chmod {mode}``, or ``chown``).
    """
    if os.name != "posix":
        return  # no POSIX modes to check
    try:
        info = path.stat()
    except OSError as exc:
        raise StartupError(f"cannot check {path}: {exc.strerror or exc}") from None
    me = os.geteuid()
    if info.st_uid != me:
        raise StartupError(
            f"{path} belongs to another user (uid {info.st_uid}), who could read or replace its keys: "
            f"run `chown -R {me} {path}` as root, or use another --data-dir"
        )
    if info.st_mode & 0o077:
        raise StartupError(
            f"{path} can be read or written by other users (mode {stat.S_IMODE(info.st_mode):o}): "
            f"run `chmod {mode} {path}`"
        )


def stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when ``path`` is replaced or rewritten (inode, mtime, size); None if it is missing."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write atomically and durably (temp file, fsync, rename, fsync of the directory) with
    ``mode`` from the first byte on. The temp file is made afresh (never through a link); one
    left by a crash is replaced.

    Raises:
      StartupError: the file cannot be written.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        try:
            fd = os.open(tmp, flags, mode)
        except FileExistsError:  # left by a crash (writers hold the lock): unlink never follows links
            tmp.unlink()
            fd = os.open(tmp, flags, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise StartupError(f"cannot write {path}: {exc.strerror or exc}") from None


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` survive a power cut (a no-op where directories cannot be opened)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path, *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Serialise work on the directory ``path`` between processes sharing it.

    Raises:
      StartupError: the lock file cannot be opened, or another process held the lock for
        ``timeout`` seconds.
    """
    if sys.platform == "win32":
        yield
        return
    import fcntl

    try:
        fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        raise StartupError(f"cannot use {path}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StartupError(
                        f"{path} is locked by another voicekiosk process (waited {timeout:g} s): "
                        "wait for it, stop it, or use another --data-dir"
                    ) from None
                time.sleep(0.05)  # a short, bounded wait: the holder only writes a few files
        yield
    finally:
        os.close(fd)
