"""The calls this server knows of: which may be hung up, how many run, and which no page owns.

Every call costs money while it is open, so each one must belong to a page: a page claims its
call over ``/api/events`` once connected. A call nobody claims within ``ORPHAN_GRACE`` (the page
crashed, lost power or its network) is hung up; so is one whose page went away for that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any

from voicekiosk import net
from voicekiosk.errors import ApiError, UpstreamError
from voicekiosk.ledger.prices import Minutes
from voicekiosk.upstream.engine import Engine
from voicekiosk.upstream.record import ENDINGS, TOLD_TO_PAGE, CallObserver, CallRecord, CallWatcher, EndReason
from voicekiosk.upstream.strays import Strays
from voicekiosk.upstream.tickets import ClaimTickets

log = logging.getLogger("voicekiosk.server")

ORPHAN_GRACE = 20.0  # seconds a call may have no page: time to connect, or to come back
STALE_AFTER = 60.0  # seconds past the engine's ``max_session`` after which a call is hung up
# Calls a device's pages may register themselves (browser-SDP mode): a newer one replaces the
# oldest, so made-up call ids cannot pin more lines than this per device.
PAGE_CALLS_PER_DEVICE = 1
SWEEP_EVERY = 60.0
LET_GO_S = 5.0  # seconds a page has to hang up a call OpenAI ended (it learns so itself, or is told)


class CallRegistry:
    """Active calls by id, the lines they take, and the way to end them (all on the event loop)."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_calls: int,
        ticket_ttl: int,
        orphan_grace: float = ORPHAN_GRACE,
        watcher: CallWatcher | None = None,
        sweep_every: float = SWEEP_EVERY,
    ) -> None:
        self._engine = engine
        self._sweep_every = sweep_every
        self._watcher = watcher
        self.max_calls = max_calls
        self.orphan_grace = orphan_grace
        self.tickets = ClaimTickets(ticket_ttl)  # one per mint (browser-SDP mode)
        self._calls: dict[str, CallRecord] = {}
        self._pending = 0  # calls being set up upstream right now
        self._tasks: set[asyncio.Task[None]] = set()
        self._hangups: set[asyncio.Future[None]] = set()  # hang-ups under way: close() lets them finish
        self._observers: list[CallObserver] = []
        self.strays = Strays(engine, total=2 * max_calls)  # calls a page holds that are unknown here
        # Tells the page that holds a call (``EventHub.push``), once the app has one.
        self.tell_page: Callable[[str, Mapping[str, Any]], bool] | None = None

    def observe(self, observer: CallObserver) -> None:
        """Tell ``observer`` of every call that starts or ends from now on."""
        self._observers.append(observer)

    def calls(self) -> list[CallRecord]:
        """The calls running now, oldest first."""
        return sorted(self._calls.values(), key=lambda record: record.started)

    def start(self) -> None:
        self._spawn(self._sweep())

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, call_id: str) -> CallRecord | None:
        return self._calls.get(call_id)

    @contextlib.contextmanager
    def line(self) -> Iterator[None]:
        """Hold a line while a call is set up.

        Raises:
          ApiError: 429 ``busy`` when every line is taken (or being taken).
        """
        if len(self._calls) + self._pending >= self.max_calls:
            raise ApiError(
                429,
                "busy",
                f"All {self.max_calls} lines are busy. Try again in a moment.",
                headers={"Retry-After": "5"},
            )
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1

    def add(self, call_id: str, client: str, *, by_page: bool = False) -> CallRecord:
        """A call that now exists upstream; hung up unless a page claims it in time. One this
        server made (not ``by_page``) is watched until it ends."""
        record = self._calls.get(call_id)
        if record is None:
            record = self._calls[call_id] = CallRecord(call_id, client, by_page=by_page)
            self.hang_up_after(call_id, self.orphan_grace, "orphan", unless_owned=True)
            if self._watcher is not None and not by_page:
                self._watcher.started(call_id)
            for observer in self._observers:
                observer.call_started(record)
        return record

    def _forget(self, call_id: str, reason: EndReason) -> CallRecord | None:
        record = self._calls.pop(call_id, None)
        if record is not None:
            self._unwatch(record)
            self._ended(record, reason)
        return record

    def ended_upstream(self, call_id: str) -> None:
        """OpenAI ended the call (its sideband read so): its page is told, and its own hang-up within
        ``LET_GO_S`` ends it as OpenAI's; with no page, or after that, the server's (a no-op upstream)."""
        record = self._calls.get(call_id)
        if record is not None and not record.gone_upstream:
            record.gone_upstream = True
            self.hang_up_after(call_id, LET_GO_S if self._tell_end(call_id, "upstream") else 0.0, "upstream")

    def _tell_end(self, call_id: str, reason: EndReason) -> bool:
        """Tell the call's page it is ended (``TOLD_TO_PAGE``); True if a page holds it and was told."""
        told = {"type": "end", "now": True, "why": reason}
        return reason in TOLD_TO_PAGE and self.tell_page is not None and self.tell_page(call_id, told)

    def _ended(self, record: CallRecord, reason: EndReason) -> None:
        for observer in self._observers:
            observer.call_ended(record, reason)

    def _unwatch(self, record: CallRecord) -> None:
        if self._watcher is not None and not record.by_page:
            self._watcher.ended(record.call_id)

    def claim(self, call_id: str, client: str, *, ticket: object = None) -> bool:
        """A page owns this call; one unknown here so far (a call the page started itself, in
        browser-SDP mode) is registered only with a ticket from the page's mint."""
        record = self._calls.get(call_id)
        if record is None:
            # Bounded even with tickets: a page cannot make us track unlimited ids.
            if len(self._calls) >= 2 * self.max_calls or not self.tickets.redeem(ticket):
                return False
            self._make_room_for(net.device_of(client))
            record = self.add(call_id, client, by_page=True)
        record.owners += 1
        return True

    def _make_room_for(self, device: str) -> None:
        """Hang up the device's oldest self-registered calls beyond ``PAGE_CALLS_PER_DEVICE - 1``."""
        own = [r for r in self._calls.values() if r.by_page and net.device_of(r.client) == device]
        for record in sorted(own, key=lambda r: r.started)[: max(0, len(own) - PAGE_CALLS_PER_DEVICE + 1)]:
            self._forget(record.call_id, "replaced")  # its line is free at once
            self._spawn(self._hang_up_quietly(record.call_id, "replaced"))

    def release(self, call_id: str) -> None:
        """A page let go of its call without hanging up: give it ``orphan_grace`` to return."""
        record = self._calls.get(call_id)
        if record is not None:
            record.owners = max(0, record.owners - 1)
            if record.owners == 0:
                self.hang_up_after(call_id, self.orphan_grace, "orphan", unless_owned=True)

    def note_usage(
        self, call_id: str, usage: Mapping[str, Any], of: str = "model", *, response: str = "", final: bool = False
    ) -> None:
        """What OpenAI counted for a call, heard on its sideband (``CallRecord.count_openai``)."""
        record = self._calls.get(call_id)
        if record is None:
            return
        added = record.count_openai(usage, of, response=response, final=final)
        if added is None:
            if (minutes := self.minutes(record)) is not None:
                log.info("usage %s: %s so far", call_id, minutes)
            return
        log.info(
            "usage %s: %d tokens in, %d out%s (call so far: %d in, %d out)", call_id, added.input, added.output,
            " transcribing" if of == "transcription" else "", record.input_tokens, record.output_tokens,
        )  # fmt: skip

    def note_tool(self, call_id: str, ok: bool) -> None:
        """A tool ran for the call on its sideband (``ok``: it answered)."""
        if (record := self._calls.get(call_id)) is not None:
            record.tool_calls += 1
            record.tool_errors += not ok

    def note_error(self, call_id: str) -> None:
        """OpenAI refused something of the call's (an event on its sideband)."""
        if (record := self._calls.get(call_id)) is not None:
            record.upstream_errors += 1

    def minutes(self, record: CallRecord) -> Minutes | None:
        """What a call has been billed so far, if the engine bills by the minute."""
        return self._engine.minutes(record)

    async def hang_up(
        self, call_id: str, *, reason: EndReason, by: str = "", page_seconds: float | None = None
    ) -> None:
        """Forget the call and tell OpenAI to end it (an end the server decided, ``TOLD_TO_PAGE``, is
        told to its page first); ``by``: who asked (a page's address, for the log); ``page_seconds``:
        the page's last count.

        Raises:
          UpstreamError: OpenAI could not be told (logged here already).
        """
        record = self._calls.pop(call_id, None)  # its line is free at once
        if record is not None and record.gone_upstream:
            reason = "upstream"  # its page was told already: its hang-up only follows OpenAI's end
        elif record is not None:
            self._tell_end(call_id, reason)  # first: the page rests rather than calling again
        if record is not None and page_seconds is not None:
            record.count_billed(page_seconds)
        if record is not None and self._watcher is not None and not record.by_page:
            self._watcher.ending(call_id)
        try:
            ended = await self._engine.hang_up(call_id)  # on the call's sideband, if it has one open
        except UpstreamError as exc:
            log.warning("hang-up %s %s failed: %s", call_id, _why(reason, by), exc.code)
            if record is not None:
                record.upstream_errors += 1
                self._unwatch(record)
                self._ended(record, reason)
            raise
        duration = ""
        if record:
            self._unwatch(record)
            minutes = self._billed(record, ended.billed_seconds)
            duration = f" after {record.seconds:.0f} s" + (f", {minutes}" if minutes else "")
            self._ended(record, reason)
        log.info("hang-up %s %s%s (%.0f ms upstream)", call_id, _why(reason, by), duration, ended.ms)

    def _billed(self, record: CallRecord, final: float | None) -> Minutes | None:
        """What a per-minute call was billed: OpenAI's final count if the hang-up saw it (it wins
        over any page's); else as ``prices.per_minute`` bounds it."""
        if final is not None:
            record.billed_seconds = record.final_seconds = final
            record.counted_here = True
        return self.minutes(record)

    def hang_up_after(
        self, call_id: str, delay: float, reason: EndReason, *, unless_owned: bool = False
    ) -> asyncio.Task[None]:
        """Hang ``call_id`` up in ``delay`` seconds if it still runs then (``unless_owned``: and no
        page holds it); cancel the task returned to call it off."""
        return self._spawn(self._hang_up_later(call_id, delay, reason, unless_owned))

    async def close(self) -> None:
        """Stop watching, and end every call: nobody should pay for a session no page can use.
        A hang-up already under way is finished, not cut short."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*self._hangups, return_exceptions=True)
        calls = [self.hang_up(call_id, reason="shutdown") for call_id in list(self._calls)]
        await asyncio.gather(*calls, self.strays.close(), return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _hang_up_quietly(self, call_id: str, reason: EndReason) -> None:
        """Hang up (failures are logged by ``hang_up``). Shielded: once the call is forgotten here it
        must reach OpenAI even if the task that asked is cancelled (``close`` waits for it)."""
        hangup = asyncio.ensure_future(self.hang_up(call_id, reason=reason))
        self._hangups.add(hangup)
        hangup.add_done_callback(self._hangups.discard)
        with contextlib.suppress(UpstreamError):
            await asyncio.shield(hangup)

    async def _hang_up_later(self, call_id: str, delay: float, reason: EndReason, unless_owned: bool) -> None:
        await asyncio.sleep(delay)
        record = self._calls.get(call_id)
        if record is None or (unless_owned and record.owners > 0):
            return  # ended, or a page has it
        await self._hang_up_quietly(call_id, reason)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every)
            max_age = self._engine.max_session + STALE_AFTER
            for record in [r for r in self._calls.values() if r.seconds > max_age]:
                # OpenAI should have ended it; if it has not, it must not run on unowned.
                await self._hang_up_quietly(record.call_id, "stale")


def _why(reason: EndReason, by: str) -> str:
    return f"by {by}" + (" (nobody spoke)" if reason == "idle" else "") if by else ENDINGS[reason]
