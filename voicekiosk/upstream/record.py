"""``CallRecord``: what the server knows of one running call: who holds it, and what it has cost
so far (OpenAI's count on its sideband, or a page's report); why a call ended (``EndReason``), and
what is told of each call's start and end (``CallObserver``, ``CallWatcher``)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from voicekiosk.ledger.prices import MAX_SECONDS, START_CHARGE_S, Minutes, Price, billed_seconds, per_minute
from voicekiosk.ledger.tokens import Tokens

# Responses whose counts are kept by id: a page reports each within seconds of its end, so the
# server's count of the same response, if it comes, comes long before this many more.
MAX_RESPONSES = 64


@dataclass
class CallRecord:
    call_id: str
    client: str
    started: float = field(default_factory=time.monotonic)
    owners: int = 0  # pages that claim it right now
    by_page: bool = False  # registered by the page that started it (browser-SDP mode)
    tokens: Tokens = field(default_factory=Tokens)  # the voice model's (OpenAI's count and pages')
    page_tokens: Tokens = field(default_factory=Tokens)  # the part of ``tokens`` only a page reported
    heard: Tokens = field(default_factory=Tokens)  # the transcription model's (what visitors said)
    heard_seconds: float = 0.0  # a transcription model billed by duration (whisper-1): seconds heard
    billed_seconds: float | None = None  # per-minute engines: the latest cumulative count
    final_seconds: float | None = None  # per-minute engines: OpenAI's final count (``session.closed``)
    counted_here: bool = False  # its sideband has heard OpenAI's usage
    counted_by_page: bool = False  # a page's report of its billed seconds was counted
    # The last ``MAX_RESPONSES`` responses counted, by id: their tokens, and whether a page's report.
    responses: OrderedDict[str, tuple[Tokens, bool]] = field(default_factory=OrderedDict)
    tool_calls: int = 0  # run by its sideband here
    tool_errors: int = 0
    upstream_errors: int = 0  # OpenAI refused one of our events, or the hang-up
    wrap_up_told: bool = False  # told to wrap up (its longest, or the day's budget)
    ending_asked: bool = False  # the agent ended the conversation: a hang-up is pending
    instructing: bool = False  # a rule (the visitor's language) is being appended: one at a time
    gone_upstream: bool = False  # OpenAI ended it: whoever hangs up next, the end is OpenAI's

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def input_tokens(self) -> int:
        return self.tokens.input

    @property
    def output_tokens(self) -> int:
        return self.tokens.output

    @property
    def usage_by(self) -> str:
        """Whose count of its usage the record holds: ``server`` (OpenAI's, on its sideband),
        ``page`` (a page's report, bounded), ``server+page`` (responses the sideband missed, the
        page's), or ``none``."""
        page = self.counted_by_page or self.page_tokens.total > 0
        return "+".join(by for by, yes in (("server", self.counted_here), ("page", page)) if yes) or "none"

    def count_openai(
        self, usage: Mapping[str, Any], of: str, *, response: str = "", final: bool = False
    ) -> Tokens | None:
        """OpenAI's count, heard on the call's sideband (it wins over pages' reports): a
        transcript's (``of="transcription"``: tokens, or seconds for a model billed by duration), a
        Live session's cumulative seconds (``final``: its ``session.closed``'s), or a Realtime
        response's tokens (``response``: its id). The tokens it added; None: seconds."""
        self.counted_here = True
        seconds = billed_seconds(usage.get("seconds"))
        if of == "transcription":
            if usage.get("type") != "duration":
                return self.heard.add(usage)
            self.heard_seconds = min(MAX_SECONDS, self.heard_seconds + (seconds or 0.0))  # whisper-1
        elif seconds is not None:
            self.billed_seconds = max(self.billed_seconds or 0.0, seconds)  # OpenAI's: not capped
            self.final_seconds = seconds if final else self.final_seconds
        else:
            self.count_response(response, added := Tokens().add(usage), by_page=False)
            return added
        return None

    def count_response(self, response_id: str, added: Tokens, *, by_page: bool) -> bool:
        """Count one response's tokens once: OpenAI's count (``by_page`` False) replaces a page's
        report of the same response, and a page's report counts only for a response the server has
        not heard. Whether it counted (a server count without an id always does)."""
        known = self.responses.get(response_id) if response_id else None
        if known is not None:
            counted, of_page = known
            if by_page or not of_page:
                return False  # counted already: the server's wins, and one report is enough
            self.tokens.subtract(counted)
            self.page_tokens.subtract(counted)
        self.tokens.merge(added)
        if by_page:
            self.page_tokens.merge(added)
        else:
            self.counted_here = True
        if response_id:
            self.responses[response_id] = (added, by_page)
            while len(self.responses) > MAX_RESPONSES:
                self.responses.popitem(last=False)
        return True

    def count_billed(self, seconds: float) -> float:
        """A page's report of the cumulative count (never summed: the largest wins), capped by the
        call's age plus the start charge: a page cannot make a call look dearer than it can be."""
        seconds = min(seconds, self.seconds + START_CHARGE_S)
        self.billed_seconds = max(self.billed_seconds or 0.0, seconds)
        return self.billed_seconds

    def minutes(self, model: str, overrides: Mapping[str, Price] | None) -> Minutes:
        """What it has been billed so far if ``model`` bills by the minute (``prices.per_minute``)."""
        return per_minute(model, overrides, final=self.final_seconds, billed=self.billed_seconds, age=self.seconds)


# Why a call ended, as the call record and the metrics name it; ``ENDINGS``: as a log line says it.
EndReason = Literal[
    "page", "idle", "agent", "budget", "limit", "orphan", "replaced", "stale", "upstream", "shutdown", "admin"
]
ENDINGS: dict[EndReason, str] = {
    "page": "by its page",
    "idle": "by its page (nobody spoke)",
    "agent": "after the agent ended the conversation",
    "budget": "as the day's budget is spent",
    "limit": "at the longest a call may last",
    "orphan": "as no page holds it",
    "replaced": "as its device started another",
    "stale": "as older than any session can be",
    "upstream": "as OpenAI ended it",
    "shutdown": "at shutdown",
    "admin": "from the admin page",
}
# The ends the server decides that the call's page is told of first (``{"type": "end", "now": true,
# "why": reason}``), so it rests (or, ``budget``: is closed for today; ``upstream``: starts afresh)
# instead of taking the hang-up for a dropped line and calling again.
TOLD_TO_PAGE: frozenset[EndReason] = frozenset({"agent", "budget", "limit", "stale", "upstream", "admin"})


class CallObserver(Protocol):
    """What keeps account of calls (the call record, the metrics): told of each call this server
    knows, once when it starts and once when it ends, on the event loop. Must not raise or block."""

    def call_started(self, record: CallRecord) -> None: ...

    def call_ended(self, record: CallRecord, reason: EndReason) -> None:
        """``record`` holds the call's final counts (OpenAI's, if the hang-up heard them)."""
        ...


class CallWatcher(Protocol):
    """What follows the calls this server made (the sidebands of ``control.CallControl``)."""

    def started(self, call_id: str) -> None: ...

    def ending(self, call_id: str) -> None:
        """It is being hung up: its sideband may carry the hang-up, and its drop is the end."""
        ...

    def ended(self, call_id: str) -> None: ...
