"""``CallBook``: the registry's ``CallObserver`` that keeps the call record. A call is written when it
starts (so a crash leaves it, ended ``crash`` at the next start) and again when it ends, with its
counts and estimated cost; ``today`` sums the venue's day for the budget, /admin and /metrics."""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from voicekiosk.datadir import ensure_dir
from voicekiosk.ledger.prices import price_of
from voicekiosk.ledger.store import TOKEN_COLUMNS, Store, StoreError
from voicekiosk.settings import Settings
from voicekiosk.upstream.calls import CallRegistry
from voicekiosk.upstream.record import CallRecord, EndReason

log = logging.getLogger("voicekiosk.ledger")
DAY = 86400.0
FLUSH_EVERY = 30.0  # seconds between writes of the running calls' counts


@dataclass(frozen=True)
class Today:
    """The venue's day so far: calls started, their seconds and estimated USD (ended and running;
    ``unknown``: calls whose cost is unknown, not in ``cost``), and the budget (None: none)."""

    calls: int
    seconds: float
    cost: float
    unknown: int
    budget: float | None

    @property
    def spent(self) -> bool:
        return self.budget is not None and self.cost >= self.budget


def _counts(record: CallRecord) -> dict[str, Any]:
    """A call's counts as its row's columns."""
    row: dict[str, Any] = {name: getattr(record.tokens, name) for name in TOKEN_COLUMNS}
    row |= {f"heard_{name}": getattr(record.heard, name) for name in TOKEN_COLUMNS}
    row |= {"heard_seconds": record.heard_seconds, "billed_seconds": record.billed_seconds, "usage_by": record.usage_by}
    row |= {"tool_calls": record.tool_calls, "tool_errors": record.tool_errors}
    return row | {"upstream_errors": record.upstream_errors}


def venue_zone(settings: Settings) -> ZoneInfo | None:
    """The venue's timezone: the opening hours' if they name one; None: this machine's local time."""
    zone = settings.hours.timezone if settings.hours is not None else None
    return ZoneInfo(zone) if zone else None


def venue_today(settings: Settings) -> date:
    """Today's date at the venue."""
    return datetime.now(venue_zone(settings)).date()


class CallBook:
    """The call record of one server: ``attach`` it to the registry; ``close`` it at the end.
    ``clock``: now, aware: the app's (``create_app(clock=...)``), which the opening hours go by too."""

    def __init__(
        self, store: Store, settings: Settings, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.store, self.settings, self._clock = store, settings, clock
        self._zone = venue_zone(settings)
        self._unreadable = False  # today's sums could not be read last time (said once)
        self._running: dict[str, tuple[CallRecord, float]] = {}  # the calls under way, and their Unix starts
        self._day = ""  # the day ``_ended`` sums: reloaded from the file when the date changes
        self._ended = (0, 0.0, 0.0, 0)  # calls, seconds, cost, unknown: ended on ``_day``
        self._flusher: asyncio.Task[None] | None = None
        crashed = store.mark_crashed()
        if crashed:
            log.warning("call record: %d call(s) left running by the last run are marked ended by a crash", crashed)
        self._today()  # today's sums so far, and old transcripts pruned

    def attach(self, calls: CallRegistry) -> None:
        calls.observe(self)

    def start(self, every: float = FLUSH_EVERY) -> None:
        """Write the running calls' counts every ``every`` s: a crash then loses little of the day's spend."""
        self._flusher = asyncio.get_running_loop().create_task(self._flush_every(every))

    async def aclose(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        self.close()

    def close(self) -> None:
        self.store.close()

    async def _flush_every(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.flush()

    def flush(self) -> None:
        """The running calls' counts and cost so far, into their rows (still not ended)."""
        now = self.clock()
        for record, _ in list(self._running.values()):
            row = _counts(record) | {"cost": self.cost(record), "updated": now}  # ``updated``: a crash's end
            self._write(functools.partial(self.store.update, record.call_id), row)

    def clock(self) -> float:
        """Now, as Unix time."""
        return self._clock().timestamp()

    def day(self, at: float | None = None) -> str:
        """The venue's date at ``at`` (Unix time; now by default): the hours' timezone, else local."""
        return datetime.fromtimestamp(self.clock() if at is None else at, self._zone).date().isoformat()

    # -- CallObserver ----------------------------------------------------------------------------

    def call_started(self, record: CallRecord) -> None:
        started = self.clock() - record.seconds
        self._running[record.call_id] = (record, started)
        row = {"call_id": record.call_id, "started": started, "day": self.day(started), "client": record.client}
        row |= {"engine": self.settings.engine, "model": self.settings.model, "updated": started}
        row["cost"] = self.cost(record)  # its cost from the start (GPT-Live: the start charge; unknown: None)
        if self.settings.engine == "realtime":
            row["transcription_model"] = self.settings.transcription_model
        self._write(self.store.insert, row)

    def call_ended(self, record: CallRecord, reason: EndReason) -> None:
        started = self._running.pop(record.call_id, (record, self.clock() - record.seconds))[1]
        today = self._today()  # before the row is written: a new day's sums are read without it
        cost = self.cost(record)
        ended = started + record.seconds
        row = {"ended": ended, "updated": ended, "reason": reason, "cost": cost} | _counts(record)
        self._write(lambda values: self.store.update(record.call_id, values), row)
        if self.day(started) == today:
            calls, seconds, spent, unknown = self._ended
            self._ended = (calls + 1, seconds + record.seconds, spent + (cost or 0.0), unknown + (cost is None))
        shown = "unknown" if cost is None else f"${cost:.4f}"
        log.info("call %s cost %s (estimated; usage counted by %s)", record.call_id, shown, record.usage_by)

    def transcript(self, call_id: str, role: str, text: str) -> None:
        """What was said in a running call (as its page reported it), kept ``transcript_days``."""
        if call_id in self._running:
            self._write(lambda _: self.store.add_transcript(call_id, self.clock(), role, text), {})

    def _write(self, write: Callable[[dict[str, Any]], object], row: dict[str, Any]) -> None:
        """A row now, on the loop (a WAL write is well under a millisecond); a failure is logged,
        never raised into the registry."""
        try:
            write(row)
        except sqlite3.Error as exc:  # an observer must not raise: the call goes on
            log.error("call record: cannot write %s: %s", self.store.path, exc)

    # -- costs -------------------------------------------------------------------------------------

    def cost(self, record: CallRecord) -> float | None:
        """USD the call has cost so far (once ended: in all), estimated; None if its model (or its
        transcription model) has no price. Per-minute engines: as ``prices.per_minute`` counts its
        seconds; per-token engines: its tokens by kind, and what its transcription model billed."""
        settings = self.settings
        price = price_of(settings.model, settings.prices)
        if price is None:
            return None  # a model with no price: unknown, even before it has said a word
        if price.per_minute is not None:
            return record.minutes(settings.model, settings.prices).cost
        spoken = record.tokens.cost(price)
        transcriber = price_of(settings.transcription_model, settings.prices)
        heard = record.heard.cost(transcriber)
        if record.heard_seconds and heard is not None:  # billed by duration (whisper-1): per minute, if priced
            rate = transcriber.per_minute if transcriber is not None else None
            heard = None if rate is None else heard + record.heard_seconds / 60 * rate
        return None if spoken is None or heard is None else spoken + heard

    def today(self) -> Today:
        """Today's calls, seconds and estimated cost, the running calls' so far included."""
        self._today()
        calls, seconds, spent, unknown = self._ended
        running = [record for record, _ in self._running.values()]
        for record in running:
            cost = self.cost(record)
            seconds += record.seconds
            spent += cost or 0.0
            unknown += cost is None
        return Today(calls + len(running), seconds, spent, unknown, self.settings.budget_per_day)

    def _today(self) -> str:
        """Today's date; on a new day, what ended on it is read from the file (a restart keeps it).
        A file that cannot be read leaves the last sums as they were (said once), tried again next time."""
        day = self.day()
        if day != self._day:
            try:
                [row] = self.store.query(
                    "SELECT COUNT(*), COALESCE(SUM(ended - started), 0), COALESCE(SUM(cost), 0),"
                    " SUM(cost IS NULL) FROM calls WHERE day = ? AND reason IS NOT NULL",
                    (day,),
                )
            except StoreError as exc:
                if not self._unreadable:
                    log.error("call record: today's spend cannot be read (%s): the last sums stand until it can", exc)
                self._unreadable = True
                return day
            self._unreadable, self._day = False, day
            self._ended = (row[0], float(row[1]), float(row[2]), int(row[3] or 0))
            # Once a day (and at start): transcripts past their days go, kept or not since.
            self._write(lambda _: self.store.prune_transcripts(self.clock() - self.settings.transcript_days * DAY), {})
        return day


def open_book(settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> CallBook:
    """The call record in the settings' data directory (made if missing), its days by ``clock``.

    Raises:
      StartupError: the directory is not private; StoreError: the file is not a call record.
    """
    ensure_dir(settings.data_dir)
    store = Store.open(settings.data_dir)
    assert store is not None  # created if missing
    book = CallBook(store, settings, clock=clock)
    models = [settings.model] + ([settings.transcription_model] if settings.engine == "realtime" else [])
    for model in models:
        if settings.budget_per_day is not None and price_of(model, settings.prices) is None:
            log.warning(
                "budget_per_day: %s has no price (add [prices.%r]): calls' cost is unknown, so not held to the budget",
                model, model,
            )  # fmt: skip
    return book
