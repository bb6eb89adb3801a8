"""How many calls the server recorded, and how many it left without an end: its call record
(``voicekiosk/ledger/``), read as ``voicekiosk calls`` reads it (read-only, while the server runs)."""

from __future__ import annotations

from pathlib import Path

from voicekiosk.ledger.store import Store


def call_record_rows(data_dir: Path) -> int | None:
    """Rows in the call record, or None if there is none (a missed goal: every call has a row)."""
    store = Store.read(data_dir)
    if store is None:
        return None
    with store:
        return int(store.query("SELECT count(*) AS n FROM calls")[0]["n"])
