"""``Budget``: what the server holds every call to, whatever a page does. A call reaching
``max_call_minutes`` is told to wrap up (``WRAP_UP_S`` before) and hung up at the limit (``limit``);
once the day's estimated spend reaches ``budget_per_day``, new calls and mints are refused (402
``budget_spent``) and running calls are told to wrap up and hung up ``GRACE_S`` later (``budget``).
The agent is told on the call's sideband (Realtime: a system message and a response) or through
``Engine.instruct`` (GPT-Live); a call the server has no channel to (``--sdp browser``) is just
hung up. Either hang-up tells the call's page first (``CallRegistry.hang_up``): it rests, or shows
"closed for today", rather than calling again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from voicekiosk.errors import ApiError, UpstreamError
from voicekiosk.ledger.book import CallBook
from voicekiosk.settings import Settings
from voicekiosk.upstream.calls import CallRegistry
from voicekiosk.upstream.control import CallControl
from voicekiosk.upstream.engine import Engine
from voicekiosk.upstream.record import CallRecord, EndReason
from voicekiosk.upstream.sideband import Sideband

log = logging.getLogger("voicekiosk.ledger")

WRAP_UP_S = 60.0  # seconds before a call's limit that the agent is told to wrap up (at most half the limit)
GRACE_S = 30.0  # seconds a call has to say goodbye once the day's budget is spent
CHECK_EVERY = 2.0  # seconds between looks at the day's spend
ANSWER_WITHIN = 15.0  # seconds the response under way may take before the wrap-up's is asked for anyway
WRAP_UP = (
    "This conversation must end within a minute: tell the visitor so now, answer briefly if you must, and say goodbye."
)


class Budget:
    """The day's budget and the longest call, on one server: ``start`` it (after the registry),
    ``close`` it before the registry's own close."""

    def __init__(
        self,
        settings: Settings,
        book: CallBook,
        calls: CallRegistry,
        engine: Engine,
        control: CallControl | None,
        *,
        every: float = CHECK_EVERY,
        grace: float = GRACE_S,
    ) -> None:
        self.settings, self.book, self.calls, self.engine, self.control = settings, book, calls, engine, control
        self.every, self.grace = every, grace
        self.limit = settings.max_call_minutes * 60
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: dict[str, list[asyncio.Task[None]]] = {}  # each running call's: called off at its end
        self._spent_on = ""  # the day the terminal was told the budget is spent (once a day)

    def start(self) -> None:
        self.calls.observe(self)
        if self.settings.budget_per_day is not None:
            self._spawn(self._watch())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def refuse_if_spent(self) -> None:
        """402 ``budget_spent`` once today's estimated spend has reached the budget."""
        today = self.book.today()
        if today.spent:
            self._say_spent(today.cost)
            raise ApiError(
                402,
                "budget_spent",
                f"Today's budget (${today.budget:.2f}) is spent: no more calls until tomorrow.",
                details={"spent": round(today.cost, 4), "budget": today.budget},
            )

    # -- CallObserver: every call's limit --------------------------------------------------------

    def call_started(self, record: CallRecord) -> None:
        lead = min(WRAP_UP_S, self.limit / 2)
        self._timers[record.call_id] = [
            self._spawn(self._wrap_up_after(record, self.limit - lead)),
            self.calls.hang_up_after(record.call_id, self.limit, "limit"),
        ]

    def call_ended(self, record: CallRecord, reason: EndReason) -> None:
        """Its timers are called off (the one hanging it up now goes on to its end: shielded)."""
        for task in self._timers.pop(record.call_id, ()):
            task.cancel()

    # -- the day's budget ----------------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                self._look()
            except Exception:  # a bug here must not end the budget for the rest of the run
                log.exception("budget: the look at today's spend failed")

    def _look(self) -> None:
        today = self.book.today()
        if not today.spent:
            return
        self._say_spent(today.cost)
        for record in self.calls.calls():
            if not record.ending_asked:
                record.ending_asked = True  # once; and the agent's own end does not race it
                timers = self._timers.setdefault(record.call_id, [])
                timers += [
                    self._spawn(self._wrap_up(record)),
                    self.calls.hang_up_after(record.call_id, self.grace, "budget"),
                ]

    def _say_spent(self, cost: float) -> None:
        day = self.book.day()
        if self._spent_on != day:
            self._spent_on = day
            log.warning(
                "budget: today's estimated spend $%.4f has reached budget_per_day $%.2f: new calls are refused "
                "until tomorrow, calls under way are ended",
                cost, self.settings.budget_per_day,
            )  # fmt: skip

    # -- telling a call to wrap up -------------------------------------------------------------------

    async def _wrap_up_after(self, record: CallRecord, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.calls.get(record.call_id) is record:
            await self._wrap_up(record)

    async def _wrap_up(self, record: CallRecord) -> None:
        """Tell the agent to end the conversation (once per call); a failure is logged, the hang-up
        comes all the same."""
        if record.wrap_up_told:
            return
        record.wrap_up_told = True
        events = self.control.dialect.tell(WRAP_UP) if self.control is not None else None
        sideband = self.control.sideband(record.call_id) if self.control is not None else None
        try:
            if events is None:
                await self.engine.instruct(record.call_id, WRAP_UP)
            elif sideband is not None:
                await _tell_on(sideband, events)
            else:
                raise ConnectionError("its sideband is not open")
        except (ApiError, UpstreamError, ConnectionError) as exc:
            log.warning("call %s could not be told to wrap up (%s): it is hung up all the same", record.call_id, exc)
            return
        log.info("call %s told to wrap up", record.call_id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


async def _tell_on(sideband: Sideband, events: list[dict[str, Any]]) -> None:
    """Send ``events`` on the call's sideband; the last (the request for an answer) once the response
    under way, if any, is done (OpenAI refuses a second one meanwhile), or after ``ANSWER_WITHIN``."""
    *items, answer = events
    async with sideband.tap() as heard:
        for event in items:
            await sideband.send(event)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ANSWER_WITHIN):
                while sideband.responding:
                    if await heard.get() is None:
                        raise ConnectionError("its sideband dropped")
        await sideband.send(answer)
