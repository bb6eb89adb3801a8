"""``/api/events``: what pages report (transcripts, turns, usage), shown live in the terminal, and
what the server tells the page that holds a call (``push``: a tool runs, show this, end the call)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from aiohttp import WSMsgType, web

from voicekiosk.logsafe import from_page
from voicekiosk.upstream.calls import CallRegistry
from voicekiosk.upstream.engine import CALL_ID
from voicekiosk.upstream.prices import billed_seconds
from voicekiosk.web.push import PagePush

log = logging.getLogger("voicekiosk.session")
MAX_MESSAGE = 16 * 1024
MAX_TEXT = 2000
RATE_PER_SECOND = 40  # a page sends a few events a second; more is a bug or abuse
# Calls one page's socket may claim (one at a time) in any CLAIM_WINDOW seconds. Per minute, not
# per socket: a kiosk page keeps its socket for weeks and claims a call after every drop, session
# rotation and wake; a cap over the socket's life (it was 4) left its 5th call unclaimed, hung up
# as an orphan 20 s in (``make soak`` found it).
MAX_CLAIMS = 10
CLAIM_WINDOW = 60.0


class EventHub:
    """One per app: the pages' event sockets. Each page claims its call here, so the call
    registry knows which calls still have a page (see ``upstream/calls.py``).

    Args:
      calls: the app's call registry.
      browser_sdp: pages post their offers to OpenAI themselves, so a call they claim may be
        new to the registry (``--sdp browser``).
    """

    def __init__(self, calls: CallRegistry, *, browser_sdp: bool) -> None:
        self.calls = calls
        self.browser_sdp = browser_sdp
        self._pages: set[PagePush] = set()  # every page's socket and push queue, holding a call or not
        self._holders: dict[str, PagePush] = {}  # call id -> the page that claimed it last

    def push(self, call_id: str, event: Mapping[str, Any]) -> bool:
        """Send ``event`` (with the call's id) to the page that holds ``call_id``; False when no
        page holds it now, or its socket cannot take it (see ``push.py``)."""
        page = self._holders.get(call_id)
        return page is not None and page.push({**event, "call_id": call_id})

    def broadcast(self, event: Mapping[str, Any]) -> int:
        """Send ``event`` to every page connected now (``/api/start`` and the like); how many took
        it. Bounded: the sockets are capped (``limits.py``), each page's queue too (``push.py``)."""
        return sum(page.push(event) for page in list(self._pages))

    @property
    def pages(self) -> int:
        """How many pages are connected now."""
        return len(self._pages)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        client = request.remote or "?"
        page = PagePush(ws)
        claims = _Claims(self.calls, client, page, self._holders)
        bucket = _Bucket(RATE_PER_SECOND)
        self._pages.add(page)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT or not bucket.take():
                    continue
                try:
                    event = json.loads(msg.data)
                    if isinstance(event, dict):
                        self._on_event(event, client, claims)
                except (ValueError, TypeError, OverflowError, RecursionError):
                    continue  # whatever a page sends, it is only news
        finally:
            self._pages.discard(page)
            claims.release()
            await page.close()
        return ws

    async def close(self) -> None:
        """Close every page's socket (at shutdown: they would otherwise hold it up)."""
        await asyncio.gather(*(page.ws.close() for page in list(self._pages)), return_exceptions=True)

    def _on_event(self, event: dict[str, Any], client: str, claims: _Claims) -> None:
        kind = event.get("type")
        call_id = event.get("call_id")
        call = call_id if isinstance(call_id, str) and CALL_ID.fullmatch(call_id) else None
        if kind == "call" and call:
            claims.claim(call, event.get("claim") if self.browser_sdp else None)
        elif kind == "transcript":
            self._transcript(event, client)
        elif kind == "usage" and isinstance(event.get("usage"), dict):
            # Only about the call this socket holds: a page cannot bill another's.
            self._usage(call if call is not None and call == claims.held else None, event["usage"], client)
        elif kind == "turn":
            ms = _number(event.get("ms"))
            if ms is not None:
                log.debug("%s: agent answered %.0f ms after you stopped", client, ms, extra=from_page(client))
        elif kind == "state":
            log.debug("%s: %s", client, _text(event.get("state"), 40), extra=from_page(client))
        elif kind == "error":
            log.warning("%s page error: %s", client, _text(event.get("message"), 300), extra=from_page(client))

    def _transcript(self, event: dict[str, Any], client: str) -> None:
        text = _text(event.get("text"), MAX_TEXT)
        if not text:
            return
        # ``speaker`` lets the terminal colour the line (console.py); the text stays plain.
        if event.get("role") == "user":
            log.info("%s you: %s", client, text, extra=from_page(client, speaker="you"))
        else:
            cut = " (cut off)" if event.get("cut") else ""
            log.info("agent: %s%s", text, cut, extra=from_page(client, speaker="agent"))

    def _usage(self, call_id: str | None, usage: dict[str, Any], client: str) -> None:
        record = self.calls.get(call_id) if call_id else None
        if record is not None and record.counted_here:
            return  # the server hears OpenAI's own count on the call's sideband
        if _number(usage.get("seconds")) is not None:  # a per-minute engine's cumulative count
            seconds = billed_seconds(usage["seconds"])
            if record is None or seconds is None:
                return
            minutes = self.calls.minutes(record.count_billed(seconds))
            if minutes is not None:
                log.info("usage %s: %s so far (page's report)", call_id, minutes, extra=from_page(client))
            return
        tokens_in = int(_number(usage.get("input_tokens")) or 0)
        tokens_out = int(_number(usage.get("output_tokens")) or 0)
        total = ""
        if record:
            record.input_tokens += tokens_in
            record.output_tokens += tokens_out
            total = f" (call so far: {record.input_tokens} in, {record.output_tokens} out)"
        log.info(
            "usage %s: %d tokens in, %d out%s", call_id or "?", tokens_in, tokens_out, total, extra=from_page(client)
        )


class _Claims:
    """The call one page's socket holds: one at a time (a new claim lets the last one go, to be
    hung up after the grace unless another page has it), ``MAX_CLAIMS`` in any ``CLAIM_WINDOW``.
    ``holders``: the hub's call id -> page, kept for ``EventHub.push``."""

    def __init__(self, calls: CallRegistry, client: str, page: PagePush, holders: dict[str, PagePush]) -> None:
        self.calls = calls
        self.client = client
        self.page = page
        self.holders = holders
        self.held: str | None = None
        self.times: deque[float] = deque(maxlen=MAX_CLAIMS)  # when the last claims were made

    def claim(self, call_id: str, ticket: object) -> None:
        now = time.monotonic()
        full = len(self.times) == MAX_CLAIMS and now - self.times[0] < CLAIM_WINDOW
        if call_id == self.held or full:
            return
        if self.calls.claim(call_id, self.client, ticket=ticket):
            self.times.append(now)
            self.release()
            self.held = call_id
            self.holders[call_id] = self.page

    def release(self) -> None:
        if self.held is not None:
            self.calls.release(self.held)
            if self.holders.get(self.held) is self.page:
                del self.holders[self.held]
            self.held = None


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
