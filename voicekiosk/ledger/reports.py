"""What the call record says to people (``voicekiosk usage``, ``voicekiosk calls``): per day and per
client, calls, minutes, tokens and estimated cost; and the last calls with their end reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from voicekiosk.ledger.store import TOKEN_COLUMNS, Store

_TOKENS = " + ".join([*TOKEN_COLUMNS, *(f"heard_{name}" for name in TOKEN_COLUMNS)])


@dataclass(frozen=True)
class DayUsage:
    """One day's calls from one client; ``cost``: the known costs' sum, ``unknown``: calls without."""

    day: str
    client: str
    calls: int
    minutes: float
    tokens: int
    cost: float
    unknown: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CallLine:
    """One call as ``voicekiosk calls`` shows it."""

    call_id: str
    started: str  # the venue's local time
    client: str
    model: str
    minutes: float | None  # None: no end recorded (running, or a crash)
    reason: str  # the end reason; "running" while it runs
    tokens: int
    cost: float | None
    usage_by: str
    tool_calls: int
    tool_errors: int
    upstream_errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def usage(store: Store, days: int, today: date) -> list[DayUsage]:
    """The ``days`` days up to ``today`` (the venue's date), by day (newest first) and client."""
    since = (today - timedelta(days=days - 1)).isoformat()
    rows = store.query(
        f"SELECT day, client, COUNT(*), COALESCE(SUM(ended - started), 0) / 60.0, SUM({_TOKENS}),"
        " COALESCE(SUM(cost), 0), SUM(cost IS NULL) FROM calls WHERE day >= ?"
        " GROUP BY day, client ORDER BY day DESC, client",
        (since,),
    )
    return [DayUsage(r[0], r[1], r[2], round(r[3], 2), int(r[4] or 0), round(r[5], 6), int(r[6] or 0)) for r in rows]


def last_calls(store: Store, n: int, zone: ZoneInfo | None) -> list[CallLine]:
    """The ``n`` latest calls, newest first; times in ``zone`` (None: this machine's)."""
    rows = store.query(
        f"SELECT *, {_TOKENS} AS all_tokens FROM calls ORDER BY started DESC LIMIT ?",
        (n,),
    )
    return [
        CallLine(
            r["call_id"],
            datetime.fromtimestamp(r["started"], zone).strftime("%Y-%m-%d %H:%M:%S"),
            r["client"],
            r["model"],
            None if r["ended"] is None else round((r["ended"] - r["started"]) / 60, 2),
            r["reason"] or "running",
            int(r["all_tokens"]),
            r["cost"],
            r["usage_by"],
            r["tool_calls"],
            r["tool_errors"],
            r["upstream_errors"],
        )
        for r in rows
    ]


def dollars(cost: float | None, unknown: int = 0) -> str:
    """``$0.1234``; ``unknown`` for a cost nobody knows; ``$0.12 + 2 unknown`` for a sum with gaps."""
    if cost is None:
        return "unknown"
    shown = f"${cost:.4f}"
    return f"{shown} + {unknown} unknown" if unknown else shown
