"""What calls cost, as /metrics and /admin show it: the call record's estimates (``ledger/book.py``),
or None (unknown) when there is none — never a guess presented as fact."""

from __future__ import annotations

from aiohttp import web

from voicekiosk.ledger.book import Today
from voicekiosk.upstream.record import CallRecord
from voicekiosk.web.appkeys import LEDGER


def call_cost(app: web.Application, record: CallRecord) -> float | None:
    """USD ``record`` has cost so far (once ended: in all), as the call record estimates it; None: unknown."""
    book = app.get(LEDGER)
    return book.cost(record) if book is not None else None


def today(app: web.Application) -> Today | None:
    """Today's totals (the venue's day, running calls included); None: no call record open."""
    book = app.get(LEDGER)
    return book.today() if book is not None else None
