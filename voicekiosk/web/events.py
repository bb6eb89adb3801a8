"""``/api/events``: what pages report (transcripts, turns, usage), shown live in the terminal, and
what the server tells the page that holds a call (``push``: a tool runs, show this, end the call).

The kiosk's own page (``?kiosk``, from this machine) beats on it every few seconds from its main
thread: ``kiosk_heard`` is when it last spoke, and ``voicekiosk kiosk`` restarts a silent one."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import WSMsgType, web

from voicekiosk.ledger.prices import START_CHARGE_S, billed_seconds
from voicekiosk.ledger.tokens import Tokens
from voicekiosk.logsafe import from_page
from voicekiosk.upstream.calls import CallRegistry
from voicekiosk.upstream.engine import CALL_ID
from voicekiosk.web.access import from_this_machine
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
HIDDEN_GRACE = 120.0  # seconds more for a kiosk page that said it is hidden (its timers: once a minute)
PAGE_STATE = re.compile(r"[a-z][a-z-]{0,23}")  # what a page says it is doing: "listening", "agent-speaking"
RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # the response a page's usage report is of (resp_…)
# Tokens a call may have used per second of its age, as far as a page's report goes: a response
# counts its whole context again, so a long answer in a long call is a few thousand a second.
PAGE_TOKENS_PER_S = 5000


class EventHub:
    """One per app: the pages' event sockets. Each page claims its call here, so the call
    registry knows which calls still have a page (see ``upstream/calls.py``).

    Args:
      calls: the app's call registry.
      browser_sdp: pages post their offers to OpenAI themselves, so a call they claim may be
        new to the registry (``--sdp browser``).
    """

    def __init__(
        self, calls: CallRegistry, *, browser_sdp: bool, keep: Callable[[str, str, str], None] | None = None
    ) -> None:
        self.calls = calls
        self.browser_sdp = browser_sdp
        self.keep = keep  # (call id, role, text): each transcript of a held call, for the call record
        self._pages: set[PagePush] = set()  # every page's socket and push queue, holding a call or not
        self._holders: dict[str, PagePush] = {}  # call id -> the page that claimed it last
        self._kiosk_heard: float | None = None  # when the kiosk's page last spoke (monotonic)
        self._kiosk_hidden = False  # it said it was hidden
        self._states: dict[PagePush, str] = {}  # what each page said it is doing, last

    def push(self, call_id: str, event: Mapping[str, Any]) -> bool:
        """Send ``event`` (with the call's id) to the page that holds ``call_id``; False when no
        page holds it now, or its socket cannot take it (see ``push.py``)."""
        page = self._holders.get(call_id)
        return page is not None and page.push({**event, "call_id": call_id})

    def broadcast(self, event: Mapping[str, Any]) -> int:
        """Send ``event`` to every page connected now (``/api/start`` and the like); how many took
        it. Bounded: the sockets are capped (``limits.py``), each page's queue too (``push.py``)."""
        return sum(page.push(event) for page in list(self._pages))

    def kiosk_heard(self) -> float | None:
        """When the kiosk's page last spoke (monotonic; None: never). A page that said it is
        hidden may have its timers held to one a minute: its word counts ``HIDDEN_GRACE`` longer."""
        last = self._kiosk_heard
        return last + HIDDEN_GRACE if last is not None and self._kiosk_hidden else last

    def state_of(self, call_id: str) -> str | None:
        """What the page that holds ``call_id`` last said it is doing (None: no page holds it, or
        it has not said)."""
        page = self._holders.get(call_id)
        return self._states.get(page) if page is not None else None

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
        kiosk = "kiosk" in request.query and from_this_machine(request)
        self._pages.add(page)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT or not bucket.take():
                    continue
                if kiosk:  # whatever it says: a page whose main thread hangs says nothing
                    self._kiosk_heard = time.monotonic()
                try:
                    event = json.loads(msg.data)
                    if isinstance(event, dict):
                        if kiosk and event.get("type") == "alive":
                            self._kiosk_hidden = event.get("hidden") is True
                        self._on_event(event, client, claims)
                except (ValueError, TypeError, OverflowError, RecursionError):
                    continue  # whatever a page sends, it is only news
        finally:
            self._pages.discard(page)
            self._states.pop(page, None)
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
            self._transcript(event, client, claims.held)
        elif kind == "usage" and isinstance(event.get("usage"), dict):
            # Only about the call this socket holds: a page cannot bill another's.
            held = call if call is not None and call == claims.held else None
            self._usage(held, event["usage"], event.get("response_id"), client)
        elif kind == "turn":
            ms = _number(event.get("ms"))
            if ms is not None:
                log.debug("%s: agent answered %.0f ms after you stopped", client, ms, extra=from_page(client))
        elif kind == "state":
            state = _text(event.get("state"), 40)
            if PAGE_STATE.fullmatch(state):
                self._states[claims.page] = state
            log.debug("%s: %s", client, state, extra=from_page(client))
        elif kind == "error":
            log.warning("%s page error: %s", client, _text(event.get("message"), 300), extra=from_page(client))

    def _transcript(self, event: dict[str, Any], client: str, call_id: str | None) -> None:
        text = _text(event.get("text"), MAX_TEXT)
        if not text:
            return
        if self.keep is not None and call_id is not None:
            self.keep(call_id, "user" if event.get("role") == "user" else "agent", text)
        # ``speaker`` lets the terminal colour the line (console.py); the text stays plain.
        if event.get("role") == "user":
            log.info("%s you: %s", client, text, extra=from_page(client, speaker="you"))
        else:
            cut = " (cut off)" if event.get("cut") else ""
            log.info("agent: %s%s", text, cut, extra=from_page(client, speaker="agent"))

    def _usage(self, call_id: str | None, usage: dict[str, Any], response: Any, client: str) -> None:
        """A page's report of a response's usage (``response``: its id) or of a per-minute call's
        cumulative seconds: counted, bounded and marked the page's, where the server did not hear
        OpenAI's own count (which replaces the page's for the same response)."""
        record = self.calls.get(call_id) if call_id else None
        if _number(usage.get("seconds")) is not None:  # a per-minute engine's cumulative count
            seconds = billed_seconds(usage["seconds"])
            if record is None or seconds is None or record.counted_here:
                return  # the server hears OpenAI's own count on the call's sideband
            record.count_billed(seconds)
            record.counted_by_page = True
            if (minutes := self.calls.minutes(record)) is not None:
                log.info("usage %s: %s so far (page's report)", call_id, minutes, extra=from_page(client))
            return
        if record is None or not (isinstance(response, str) and RESPONSE_ID.fullmatch(response)):
            what = "of a call it does not hold" if record is None else "without its response's id"
            log.info("usage %s: a page's report %s (not counted)", call_id or "?", what, extra=from_page(client))
            return
        # Bounded: a page cannot make a call look dearer than a call of its age can be.
        added = Tokens()
        added.add(usage)
        if record.tokens.total + added.total > PAGE_TOKENS_PER_S * (record.seconds + START_CHARGE_S):
            log.warning("usage %s: a page's report beyond what the call can have used (not counted)", call_id)
            return
        if not record.count_response(response, added, by_page=True):
            return  # the server heard OpenAI's count of that response (or the page said it twice)
        log.info(
            "usage %s: %d tokens in, %d out (call so far: %d in, %d out; page's report)", call_id,
            added.input, added.output, record.input_tokens, record.output_tokens, extra=from_page(client),
        )  # fmt: skip


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
        elif self.calls.get(call_id) is None:
            # A call this server does not know (made before a restart, or never registered): it
            # would run outside the budget, the limit and /admin. The page hangs it up and starts
            # one this server counts; its hang-up here finds nothing, so this server's goes upstream.
            self.times.append(now)  # a stray's claim counts toward the bound too
            self.page.push({"type": "end", "now": True, "why": "unknown", "call_id": call_id})
            self.calls.strays.hang_up(call_id, self.client)

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
