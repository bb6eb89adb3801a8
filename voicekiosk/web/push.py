"""``PagePush``: what the server tells one page over its ``/api/events`` socket (a tool runs, show
this, end the call), in order, bounded: a page that does not read cannot make the server hold
its messages, and one whose socket stalls is dropped (it reconnects and claims its call again)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from aiohttp import web

log = logging.getLogger("voicekiosk.session")

MAX_EVENT = 2 * 1024 * 1024  # one event (an image shown is the largest: 1 MiB, base64)
MAX_QUEUED = 4 * 1024 * 1024  # bytes waiting for one page
MAX_EVENTS = 32  # events waiting for one page
SEND_WITHIN = 10.0  # seconds one event may take to go out before the page is dropped


class PagePush:
    """The server's side of one page socket: ``push`` queues, one writer sends in order."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._queue: deque[str] = deque()
        self._queued = 0
        self._ready = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._warned = False  # said once that the page is behind, until it catches up

    def push(self, event: Mapping[str, Any]) -> bool:
        """Queue ``event`` (JSON) for the page; False when it cannot go (too big, too many
        waiting, or the socket is closing)."""
        if self.ws.closed:
            return False
        text = json.dumps(event, separators=(",", ":"))
        if len(text) > MAX_EVENT or len(self._queue) >= MAX_EVENTS or self._queued + len(text) > MAX_QUEUED:
            if not self._warned:
                self._warned = True
                log.warning("a page's events are backed up: some were not sent")
            return False
        self._queue.append(text)
        self._queued += len(text)
        self._ready.set()
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())
        return True

    async def close(self) -> None:
        """Stop the writer (the socket is closed by its handler)."""
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)  # a cancel of ours still stops us

    async def _write(self) -> None:
        while True:
            await self._ready.wait()
            while self._queue:
                text = self._queue.popleft()
                self._queued -= len(text)
                try:
                    async with asyncio.timeout(SEND_WITHIN):
                        await self.ws.send_str(text)
                except (TimeoutError, ConnectionError, RuntimeError):
                    # Stalled or gone: drop it; the page reconnects and claims its call again.
                    self._queue.clear()
                    self._queued = 0
                    await self.ws.close()
                    return
            self._ready.clear()
            self._warned = False
