"""The data directory: private (0700), its files written atomically, its writers serialised."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from voicekiosk.errors import StartupError


def ensure_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) if it is missing.

    Raises:
      StartupError: it cannot be created, or it is not a directory.
    """
    try:
        if not path.exists():
            path.mkdir(parents=True, mode=0o700)
            path.chmod(0o700)  # mkdir's mode is filtered by the umask
        elif not path.is_dir():
            raise StartupError(f"--data-dir: {path} is not a directory")
    except OSError as exc:
        raise StartupError(f"--data-dir: cannot create {path}: {exc.strerror or exc}") from None


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (temp file + rename) with ``mode`` from the first byte on.

    Raises:
      StartupError: the file cannot be written.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise StartupError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise work on the directory ``path`` between processes sharing it.

    Raises:
      StartupError: the lock file cannot be opened.
    """
    if sys.platform == "win32":
        yield
        return
    import fcntl

    try:
        fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StartupError(f"cannot use {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
