"""SEAM: what calls cost, from the call record (``voicekiosk/ledger/``, built beside this by another
change of issue 13). Until the record is wired in here both answers are None, and ``/metrics`` and
``/admin`` say the cost is unknown: never a guess presented as fact.

Wire-up, once the ledger exists: return its estimate of the call (running or ended) from
``call_cost``, and its totals for today against ``budget_per_day`` from ``today``.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from voicekiosk.upstream.calls import CallRecord


@dataclass(frozen=True)
class Today:
    """Today's totals against the budget (the ledger's)."""

    calls: int
    minutes: float
    cost: float | None  # USD; None: some call's model has no known price
    budget: float | None  # USD a day; None: no budget set


def call_cost(app: web.Application, record: CallRecord) -> float | None:
    """USD ``record`` has cost so far, as the call record estimates it; None: unknown."""
    return None  # SEAM: the ledger's estimate of this call


def today(app: web.Application) -> Today | None:
    """Today's totals; None: no call record yet."""
    return None  # SEAM: the ledger's today()
