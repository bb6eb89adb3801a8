"""``/api/events``: what pages report (transcripts, turns, usage), shown live in the terminal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web
from rich.markup import escape

from voicekiosk.broker import CALL_ID
from voicekiosk.errors import UpstreamError
from voicekiosk.keys import CALLS, SETTINGS

log = logging.getLogger("voicekiosk.session")
MAX_MESSAGE = 16 * 1024
MAX_TEXT = 2000
RATE_PER_SECOND = 40  # a page sends a few events a second; more is a bug or abuse
ORPHAN_GRACE = 15.0  # seconds a page may be away before its call is hung up for it


class EventHub:
    """One per app. Each page connection says which call is its own; a call whose page is gone
    for longer than ``ORPHAN_GRACE`` is hung up, so a crashed kiosk stops costing money."""

    def __init__(self, app: web.Application, *, orphan_grace: float = ORPHAN_GRACE) -> None:
        self.app = app
        self.orphan_grace = orphan_grace
        self._owners: dict[str, int] = {}  # call id -> number of pages claiming it
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        client = request.remote or "?"
        claimed: set[str] = set()
        bucket = _Bucket(RATE_PER_SECOND)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if not bucket.take():
                    continue
                try:
                    event = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self._on_event(event, client, claimed)
        finally:
            for call_id in claimed:
                self._release(call_id)
        return ws

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _on_event(self, event: dict[str, Any], client: str, claimed: set[str]) -> None:
        kind = event.get("type")
        call_id = event.get("call_id")
        call = call_id if isinstance(call_id, str) and CALL_ID.match(call_id) else None
        if kind == "call" and call:
            self._claim(call, client, claimed)
        elif kind == "transcript":
            self._transcript(event, client)
        elif kind == "usage" and isinstance(event.get("usage"), dict):
            self._usage(call, event["usage"])
        elif kind == "turn":
            ms = _number(event.get("ms"))
            if ms is not None:
                log.debug("%s: agent answered %.0f ms after you stopped", client, ms)
        elif kind == "state":
            log.debug("%s: %s", client, _text(event.get("state"), 40))
        elif kind == "error":
            log.warning("%s page error: %s", client, _text(event.get("message"), 300))

    def _claim(self, call_id: str, client: str, claimed: set[str]) -> None:
        if call_id in claimed:
            return
        claimed.add(call_id)
        self._owners[call_id] = self._owners.get(call_id, 0) + 1
        if self.app[SETTINGS].sdp == "browser":
            self.app[CALLS].add(call_id, client)  # the page posted its offer itself

    def _release(self, call_id: str) -> None:
        owners = self._owners.get(call_id, 0) - 1
        if owners > 0:
            self._owners[call_id] = owners
            return
        self._owners.pop(call_id, None)
        if self.app[CALLS].get(call_id) is not None:
            task = asyncio.get_running_loop().create_task(self._hang_up_orphan(call_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _hang_up_orphan(self, call_id: str) -> None:
        await asyncio.sleep(self.orphan_grace)
        if call_id in self._owners or self.app[CALLS].get(call_id) is None:
            return  # the page came back, or the call ended on its own
        with contextlib.suppress(UpstreamError):  # logged by hang_up
            await self.app[CALLS].hang_up(call_id, reason="its page went away")

    def _transcript(self, event: dict[str, Any], client: str) -> None:
        text = _text(event.get("text"), MAX_TEXT)
        if not text:
            return
        if event.get("role") == "user":
            log.info("[bold cyan]%s you:[/] %s", escape(client), escape(text), extra={"markup": True})
        else:
            cut = " [dim](cut off)[/]" if event.get("cut") else ""
            log.info("[bold magenta]agent:[/] %s%s", escape(text), cut, extra={"markup": True})

    def _usage(self, call_id: str | None, usage: dict[str, Any]) -> None:
        tokens_in = int(_number(usage.get("input_tokens")) or 0)
        tokens_out = int(_number(usage.get("output_tokens")) or 0)
        record = self.app[CALLS].get(call_id) if call_id else None
        total = ""
        if record:
            record.input_tokens += tokens_in
            record.output_tokens += tokens_out
            total = f" (call so far: {record.input_tokens} in, {record.output_tokens} out)"
        log.info("usage %s: %d tokens in, %d out%s", call_id or "?", tokens_in, tokens_out, total)


class _Bucket:
    """A token bucket: ``rate`` events a second, bursts up to ``rate``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _text(value: Any, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
