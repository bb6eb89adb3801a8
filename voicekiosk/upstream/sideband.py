"""``Sideband``: the server's control connection to one Realtime call (``openai-realtime.md`` §3).

Opened with the real key once the call exists, it runs the function calls the model makes (through
the app's ``ToolRunner``) and answers each with its ``function_call_output`` and a
``response.create``. A dropped sideband is reopened with a bounded back-off; one that cannot be
opened leaves the call talking without tools (logged). Nothing it receives reaches a log line
unescaped, and the key never does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
from yarl import URL

from voicekiosk.tools.base import Caller
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.upstream.http import websocket_url

log = logging.getLogger("voicekiosk.tools")

BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0)  # seconds before each reopening after a failure; then give up
STABLE = 30.0  # seconds a sideband must have stayed open for its drop not to count as a failure
SEND_WITHIN = 10.0  # seconds an output may wait for the sideband to be back
MAX_MESSAGE = 1024 * 1024  # a server event is a few KB (a session with its tools a little more)
GONE, REFUSED = (404,), (401, 403)  # answers that no retry changes


def sideband_url(base_url: str, call_id: str) -> URL:
    """``wss://…/v1/realtime?call_id=…`` from the configured REST base."""
    return websocket_url(base_url, "realtime").with_query(call_id=call_id)


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
    ) -> None:
        self.call_id = call_id
        self._url, self._headers, self._sockets, self._runner = url, headers, sockets, runner
        self._caller = caller
        self._backoff, self._open_within = backoff, open_within
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._open = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: set[str] = set()  # call_ids already run: an event seen twice runs once
        self._running = 0  # function calls of this call not answered yet
        self.opened = 0  # times a sideband was opened (1 + reopenings)
        self.closed = False

    def start(self) -> None:
        self._spawn(self._run())

    async def close(self) -> None:
        """Stop: no reopening, no tool call left running, the socket closed."""
        self.closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()

    # -- the connection ---------------------------------------------------------------------

    async def _run(self) -> None:
        """Open, serve, reopen: at once after a sideband that stayed up ``STABLE`` s, else after the
        next back-off step; given up when the steps run out or OpenAI refuses for good."""
        failures, why = 0, ""
        while True:
            status = await self._connect()
            if status == 101:
                opened_at = time.monotonic()
                await self._serve()  # close() cancels this task: only a drop gets past
                log.warning("sideband of %s dropped: reopening", self.call_id)
                if time.monotonic() - opened_at >= STABLE:
                    failures = 0
                    continue
                why = "dropped again"
            elif status in GONE:
                log.info("sideband of %s: the call has ended upstream", self.call_id)
                return
            else:
                why = f"not opened ({status})"
            if status in REFUSED or failures >= len(self._backoff):
                log.error("sideband of %s %s: the call goes on without tools", self.call_id, why)
                return
            await asyncio.sleep(self._backoff[failures])
            failures += 1

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
            log.info("sideband of %s open: tools run on this server", self.call_id)
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

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.output_item.done":
            item = event.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call" and item.get("status") == "completed":
                self._function_call(item)
        elif kind == "error":
            error = event.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            log.warning("sideband of %s: OpenAI refused an event (%s)", self.call_id, _safe(code))

    # -- function calls ---------------------------------------------------------------------

    def _function_call(self, item: dict[str, Any]) -> None:
        call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
        if not (isinstance(call_id, str) and isinstance(name, str) and isinstance(arguments, str)):
            log.warning("sideband of %s: a function call without call_id, name or arguments", self.call_id)
            return
        if call_id in self._seen or len(self._seen) > 10_000:
            return
        self._seen.add(call_id)
        self._running += 1
        if self._running == 1 and self._caller is not None:
            self._caller.tell_page({"type": "tool", "state": "running"})  # the page: "working on it"
        self._spawn(self._answer(call_id, name, arguments))

    async def _answer(self, call_id: str, name: str, arguments: str) -> None:
        try:
            outcome = await self._runner.call(name, arguments, self._caller)
        finally:
            self._running -= 1
            if self._running == 0 and self._caller is not None:
                self._caller.tell_page({"type": "tool", "state": "done"})
        item = {"type": "function_call_output", "call_id": call_id, "output": outcome.output}
        events = [{"type": "conversation.item.create", "item": item}]
        if self._running == 0:  # the last of parallel calls asks for the answer
            events.append({"type": "response.create"})
        await self._send(events)

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
