"""``Store``: the call record's SQLite file in the data directory (``calls.sqlite3``, 0600). WAL, so
the CLI reads while the server writes; its schema versioned by ``PRAGMA user_version``, each step of
``MIGRATIONS`` run once, in order. Writes are a row each, small enough for the event loop (the test
measures them)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from voicekiosk.errors import VoicekioskError
from voicekiosk.ledger.tokens import Tokens

FILE = "calls.sqlite3"
BUSY_MS = 5000  # how long a writer waits for another (the CLI reading, a second server)
TOKEN_COLUMNS = [f.name for f in fields(Tokens)]
_counts = ", ".join(f"{name} INTEGER NOT NULL DEFAULT 0" for name in TOKEN_COLUMNS)
_heard = ", ".join(f"heard_{name} INTEGER NOT NULL DEFAULT 0" for name in TOKEN_COLUMNS)

# Each entry brings the schema from version i to i + 1; never edit one that has shipped, add another.
MIGRATIONS: Sequence[str] = (
    f"""
    CREATE TABLE calls (
        call_id TEXT PRIMARY KEY,
        started REAL NOT NULL,         -- Unix time
        ended REAL,                    -- NULL: running, or the server stopped without ending it
        day TEXT NOT NULL,             -- the venue's date when it started (YYYY-MM-DD)
        reason TEXT,                   -- calls.EndReason, or "crash"
        client TEXT NOT NULL,
        engine TEXT NOT NULL,
        model TEXT NOT NULL,
        transcription_model TEXT NOT NULL DEFAULT '',
        {_counts},
        {_heard},
        billed_seconds REAL,
        cost REAL,                     -- USD, estimated; NULL: unknown (a model with no price)
        usage_by TEXT NOT NULL DEFAULT 'none',  -- server | page | server+page | none
        tool_calls INTEGER NOT NULL DEFAULT 0,
        tool_errors INTEGER NOT NULL DEFAULT 0,
        upstream_errors INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX calls_by_day ON calls (day);
    CREATE TABLE transcripts (
        call_id TEXT NOT NULL,
        at REAL NOT NULL,
        role TEXT NOT NULL,            -- user | agent
        text TEXT NOT NULL
    );
    CREATE INDEX transcripts_by_time ON transcripts (at);
    """,
    """
    ALTER TABLE calls ADD COLUMN updated REAL;  -- Unix time its row was last written: a crash's end
    ALTER TABLE calls ADD COLUMN heard_seconds REAL NOT NULL DEFAULT 0;  -- transcription billed by duration
    """,
)


class StoreError(VoicekioskError):
    """The call record cannot be read or written (the message names the file)."""


class Store:
    """One connection to the call record; ``Store.open`` it."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db, self.path = db, path
        self.version = 0  # its schema's (``PRAGMA user_version``), once opened

    @classmethod
    def open(cls, data_dir: Path, *, create: bool = True) -> Store | None:
        """The call record in ``data_dir``, migrated to the current schema (the server's); None if
        there is none and ``create`` is False.

        Raises:
          StoreError: it is not a database, or one from a newer voicekiosk, or cannot be written.
        """
        path = data_dir / FILE
        if not path.exists():
            if not create:
                return None
            with contextlib.suppress(FileExistsError):  # created 0600 before SQLite opens it
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return cls._connect(path, str(path), migrate=True)

    @classmethod
    def read(cls, data_dir: Path) -> Store | None:
        """The call record in ``data_dir``, read-only and as it is (the CLI's: never migrated, so
        an older schema is read as far as it goes); None if there is none. A file no server has open
        (no ``-wal``/``-shm`` beside it) is opened immutable: reading it creates no file, so even
        ``sudo voicekiosk calls`` leaves none the server could not open.

        Raises:
          StoreError: it is not a database, or one from a newer voicekiosk.
        """
        path = data_dir / FILE
        if not path.exists():
            return None
        idle = not any(path.with_name(path.name + end).exists() for end in ("-wal", "-shm"))
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=ro" + ("&immutable=1" if idle else "")
        return cls._connect(path, uri, migrate=False)

    @classmethod
    def _connect(cls, path: Path, where: str, *, migrate: bool) -> Store:
        try:
            db = sqlite3.connect(
                where, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False, uri=not migrate
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the call record {path}: {exc}") from None
        db.row_factory = sqlite3.Row
        store = cls(db, path)
        try:
            store._prepare(migrate)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StoreError(
                f"the call record {path} is unreadable ({exc}): move it aside to start a new one"
            ) from None
        return store

    def _prepare(self, migrate: bool) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(f"schema {version} is newer than this voicekiosk's ({len(MIGRATIONS)})")
        self.version = version
        if not migrate:
            return
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")  # WAL: a power cut may lose the last rows, never corrupt
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        for step in range(version, len(MIGRATIONS)):
            with self.transaction():
                self.db.executescript(f"BEGIN; {MIGRATIONS[step]}; PRAGMA user_version = {step + 1};")
        self.version = len(MIGRATIONS)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            yield
            if self.db.in_transaction:
                self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------

    def insert(self, row: Mapping[str, Any]) -> None:
        names = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        self.db.execute(f"INSERT OR REPLACE INTO calls ({names}) VALUES ({marks})", dict(row))

    def update(self, call_id: str, row: Mapping[str, Any]) -> None:
        sets = ", ".join(f"{name} = :{name}" for name in row)
        self.db.execute(f"UPDATE calls SET {sets} WHERE call_id = :call_id", {**row, "call_id": call_id})

    def mark_crashed(self) -> int:
        """Rows a stopped server left running were ended by its crash, when they were last written
        (``updated``): how many."""
        return self.db.execute(
            "UPDATE calls SET reason = 'crash', ended = updated WHERE ended IS NULL AND reason IS NULL"
        ).rowcount

    def add_transcript(self, call_id: str, at: float, role: str, text: str) -> None:
        self.db.execute("INSERT INTO transcripts VALUES (?, ?, ?, ?)", (call_id, at, role, text))

    def prune_transcripts(self, before: float) -> int:
        return self.db.execute("DELETE FROM transcripts WHERE at < ?", (before,)).rowcount

    # -- reading -------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        """Rows for a report (``reports.py``).

        Raises:
          StoreError: the file is not a call record SQLite can read.
        """
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            older = " (an older schema: run the server once to upgrade it)" if self.version < len(MIGRATIONS) else ""
            raise StoreError(f"the call record {self.path} is unreadable ({exc}){older}") from None
