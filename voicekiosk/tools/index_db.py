"""The knowledge index's SQLite file: its schema (versioned), FTS5 checked, and small helpers."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from voicekiosk.errors import StartupError

SCHEMA = 1  # PRAGMA user_version: another one means the index is rebuilt
PER_FILE = 1 << 16  # passages' rowids are file id * PER_FILE + n: a file's passages go in one range


def check_fts5(conn: sqlite3.Connection) -> None:
    """Raises StartupError when this SQLite has no FTS5 (some minimal builds leave it out)."""
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp.fts5_probe")
    except sqlite3.OperationalError:
        raise StartupError(
            f"[knowledge]: this Python's SQLite ({sqlite3.sqlite_version}) has no FTS5 full-text search; "
            "use a Python built with a full SQLite (python.org's, or your distribution's python3)"
        ) from None


def create(conn: sqlite3.Connection, folder: str) -> None:
    """A new, empty index (whatever was there is dropped)."""
    with transaction(conn):
        conn.execute("DROP TABLE IF EXISTS passages")
        conn.execute("DROP TABLE IF EXISTS files")
        conn.execute("DROP TABLE IF EXISTS meta")
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, "
            "mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL, ino INTEGER NOT NULL)"
        )
        conn.execute(
            "CREATE VIRTUAL TABLE passages USING fts5("
            "path UNINDEXED, heading, body, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        conn.execute("INSERT INTO meta VALUES ('folder', ?)", (folder,))
        conn.execute(f"PRAGMA user_version = {SCHEMA}")


def meta(conn: sqlite3.Connection, key: str) -> str | None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:  # no such table
        return None
    return None if row is None else str(row[0])


def drop_passages(conn: sqlite3.Connection, file_id: int) -> None:
    conn.execute("DELETE FROM passages WHERE rowid >= ? AND rowid < ?", (file_id * PER_FILE, (file_id + 1) * PER_FILE))


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def unlink_all(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            db.with_name(db.name + suffix).unlink()
