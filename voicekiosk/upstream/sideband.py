"""``Sideband``: the server's control connection to one call, on either engine (``openai-realtime.md``
§3, ``openai-live.md`` §4.1); what differs between them is its ``Dialect``.

Opened with the real key once the call exists, it hands the function calls the model makes to its
``ToolCalls`` (``tool_calls.py``: run, then answered when the engine allows) and sends their
answers. A dropped sideband is reopened with a bounded back-off; the responses whose end it may
have missed meanwhile are settled ``SETTLE`` s after it is back. One that cannot be opened leaves
the call talking without tools (logged).
Nothing it receives reaches a log line unescaped, and the key never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Protocol

import aiohttp
from yarl import URL

from voicekiosk.tools.base import Caller
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.upstream.dialects import Dialect, RealtimeDialect
from voicekiosk.upstream.tool_calls import ToolCalls

log = logging.getLogger("voicekiosk.tools")

BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0)  # seconds before each reopening after a failure; then give up
STABLE = 30.0  # seconds a sideband must have stayed open for its drop not to count as a failure
SEND_WITHIN = 10.0  # seconds an output may wait for the sideband to be back
MAX_MESSAGE = 1024 * 1024  # a server event is a few KB (a session with its tools a little more)
GONE, REFUSED = (404,), (401, 403)  # answers that no retry changes
SETTLE = 2.0  # seconds after a reopening for events to show a response went on while it was down


class CallNotes(Protocol):
    """What keeps a call's counts (the registry): OpenAI's usage, tools run, events refused."""

    def note_usage(
        self, call_id: str, usage: Mapping[str, Any], of: str = "model", *, response: str = "", final: bool = False
    ) -> None: ...

    def note_tool(self, call_id: str, ok: bool) -> None: ...

    def note_error(self, call_id: str) -> None: ...

    def ended_upstream(self, call_id: str) -> None:
        """OpenAI ended the call (not a hang-up of ours)."""
        ...


class Sideband:
    """One call's control connection; ``start`` it, ``close`` it when the call ends."""

    def __init__(
        self,
        call_id: str,
        url: URL,
        headers: Callable[[], Mapping[str, str]],
        sockets: aiohttp.ClientSession,
        runner: ToolRunner,
        backoff: Sequence[float] = BACKOFF,
        open_within: float = 10.0,
        caller: Caller | None = None,
        dialect: Dialect | None = None,
        notes: CallNotes | None = None,
    ) -> None:
        self.call_id = call_id
        self._url, self._headers, self._sockets, self._runner = url, headers, sockets, runner
        self._caller = caller
        self._notes = notes
        self._dialect = dialect or RealtimeDialect()
        self._backoff, self._open_within = backoff, open_within
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._open = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        ran = (lambda ok: notes.note_tool(call_id, ok)) if notes is not None else None
        self.calls = ToolCalls(call_id, runner, self._dialect, caller, self._answer, self._spawn, ran)
        self._taps: list[asyncio.Queue[dict[str, Any] | None]] = []
        self._ended = False  # the engine said the session is over: no reopening
        self._asked = False  # ... as a client asked (the page's own hang-up): not OpenAI's end
        self.ending = False  # the call is being hung up: a drop is its end, not to be reopened
        self.responding = False  # a response is under way (a new one would be refused meanwhile)
        self.opened = 0  # times a sideband was opened (1 + reopenings)
        self.closed = False

    def start(self) -> None:
        self._spawn(self._run())

    async def close(self) -> None:
        """Stop: no reopening, no tool call left running, the socket closed."""
        self.closed = True
        self.calls.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    @property
    def _what(self) -> str:
        """What it is open for, as the log says it."""
        return "tools run on this server" if self._runner else "the server hears its usage"

    async def send(self, event: Mapping[str, Any]) -> None:
        """Send one event now.

        Raises:
          ConnectionError: the sideband is not open.
        """
        if self._ws is None or not self._open.is_set():
            raise ConnectionError("the sideband is not open")
        await self._ws.send_str(json.dumps(event))

    @contextlib.asynccontextmanager
    async def tap(self) -> AsyncIterator[asyncio.Queue[dict[str, Any] | None]]:
        """Every server event from now on, in a queue, and None when the socket goes (a drop or the end)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._taps.append(queue)
        try:
            yield queue
        finally:
            self._taps.remove(queue)

    # -- the connection ---------------------------------------------------------------------

    async def _run(self) -> None:
        """Open, serve, reopen: at once after a sideband that stayed up ``STABLE`` s, else after the
        next back-off step; given up when the steps run out or OpenAI refuses for good."""
        failures, why = 0, ""
        while True:
            status = await self._connect()
            if status == 101:
                opened_at = time.monotonic()
                if self.calls.unsure:
                    self._spawn(self._settle(self.opened))
                await self._serve()  # close() cancels this task: only a drop or the end gets past
                if self._ended or self.ending:
                    log.info("sideband of %s: the call has ended", self.call_id)
                    return self._over()
                log.warning("sideband of %s dropped: reopening", self.call_id)
                if time.monotonic() - opened_at >= STABLE:
                    failures = 0
                    continue
                why = "dropped again"
            elif status in GONE:  # once it was open: the call is gone (at first: it never was here)
                log.info("sideband of %s: the call has ended upstream", self.call_id)
                return self._over() if self.opened else None
            else:
                why = f"not opened ({status})"
            if status in REFUSED or failures >= len(self._backoff):
                without = "tools" if self._runner else "the server hearing its usage"
                log.error("sideband of %s %s: the call goes on without %s", self.call_id, why, without)
                return
            await asyncio.sleep(self._backoff[failures])
            failures += 1

    def _over(self) -> None:
        """The call is over: if OpenAI ended it (Live's ``session.closed``, or Realtime's call gone),
        not a hang-up of ours, its keeper is told."""
        if not (self.ending or self.closed or self._asked) and self._notes is not None:
            self._notes.ended_upstream(self.call_id)

    async def _connect(self) -> int:
        """Open the socket (within ``open_within`` s): 101 when it is open, else the refusal's status
        (0: unreachable or no answer in time)."""
        try:
            async with asyncio.timeout(self._open_within):
                self._ws = await self._sockets.ws_connect(
                    self._url, headers=dict(self._headers()), heartbeat=20.0, max_msg_size=MAX_MESSAGE
                )
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            return 0
        self.opened += 1
        if self.opened == 1:
            log.info("sideband of %s open: %s", self.call_id, self._what)
        self._open.set()
        return 101

    async def _serve(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._on_event(_event(message.data))
        finally:
            self._open.clear()
            for queue in self._taps:
                queue.put_nowait(None)
            self.calls.dropped()

    async def _settle(self, opened: int) -> None:
        """After ``SETTLE`` s on the sideband opened ``opened``-th, the responses nothing showed going
        on ended while it was down (Live may replay their end; Realtime would go on sending)."""
        await asyncio.sleep(SETTLE)
        if self.opened == opened and self._open.is_set():
            self.calls.settle()

    def _on_event(self, event: dict[str, Any]) -> None:
        for queue in self._taps:
            queue.put_nowait(event)
        reading = self._dialect.read(event)
        if reading is not None and reading.usage is not None and self._notes is not None:
            final = reading.kind == "ended"  # Live's session.closed: the final count
            self._notes.note_usage(self.call_id, reading.usage, reading.of, response=reading.batch, final=final)
        if reading is None:
            if event.get("type") == "error":
                error = event.get("error")
                code = error.get("code") if isinstance(error, dict) else None
                log.warning("sideband of %s: OpenAI refused an event (%s)", self.call_id, _safe(code))
                if self._notes is not None:
                    self._notes.note_error(self.call_id)
        elif reading.kind == "call" and reading.item is not None:
            self.calls.call(reading.batch, reading.item)
        elif reading.kind == "ended":
            self._ended, self._asked = True, reading.asked
        elif reading.kind in ("finished", "failed"):
            self.responding = False
            self.calls.ended(reading.batch, reading.kind == "failed")
        elif reading.kind == "progress":
            self.responding = True
            self.calls.going_on(reading.batch)

    # -- answers ------------------------------------------------------------------------------

    def _answer(self, events: list[dict[str, Any]]) -> None:
        if not self.closed:
            self._spawn(self._send(events))

    async def _send(self, events: list[dict[str, Any]]) -> None:
        """Send on the open sideband, waiting (bounded) for one to be back if it dropped."""
        try:
            async with asyncio.timeout(SEND_WITHIN):
                await self._open.wait()
                assert self._ws is not None
                for event in events:
                    await self._ws.send_str(json.dumps(event))
        except (TimeoutError, ConnectionError, aiohttp.ClientError):
            log.warning("sideband of %s: a tool's output could not be sent", self.call_id)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("sideband of %s: %s", self.call_id, type(exc).__name__, exc_info=exc)


def _event(text: str) -> dict[str, Any]:
    try:
        event = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return event if isinstance(event, dict) else {}


def _safe(value: Any) -> str:
    """An upstream code, fit for a log line."""
    text = str(value)[:64]
    return text if text.replace("_", "").replace(".", "").isalnum() else repr(text)
