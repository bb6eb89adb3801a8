"""How many calls the server recorded: its SQLite call record (issue 13, ``voicekiosk/ledger/``).

SEAM (for the lead, when ``voicekiosk/ledger/`` lands): the call record was being built beside
the soak, so this counts rows of a table named ``CALLS_TABLE`` in any SQLite file in the data
directory, read-only, and says None ("no call record") when there is none. Once the ledger is
merged, point ``record_files`` at its one file (its module's own name for it) and ``CALLS_TABLE``
at its table, so that a renamed file fails loudly instead of reading "no call record".
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

CALLS_TABLE = "calls"
SQLITE_MAGIC = b"SQLite format 3\0"


def record_files(data_dir: Path) -> list[Path]:
    """SQLite databases in the data directory (SEAM: the ledger's one file, once merged)."""
    found = []
    for path in sorted(data_dir.glob("*")):
        if path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal")):
            with path.open("rb") as file:
                if file.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
                    found.append(path)
    return found


def call_record_rows(data_dir: Path) -> int | None:
    """Rows in the call record (every file's ``CALLS_TABLE``, summed), or None if there is none."""
    total: int | None = None
    for path in record_files(data_dir):
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if CALLS_TABLE in tables:
                total = (total or 0) + int(db.execute(f"SELECT count(*) FROM {CALLS_TABLE}").fetchone()[0])
    return total
