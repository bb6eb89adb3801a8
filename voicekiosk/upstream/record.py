"""``CallRecord``: what the server knows of one running call: who holds it, and what it has cost
so far (OpenAI's count on its sideband, or a page's report); why a call ended (``EndReason``), and
what is told of each call's start and end (``CallObserver``, ``CallWatcher``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

from voicekiosk.ledger.prices import START_CHARGE_S
from voicekiosk.ledger.tokens import Tokens


@dataclass
class CallRecord:
    call_id: str
    client: str
    started: float = field(default_factory=time.monotonic)
    owners: int = 0  # pages that claim it right now
    by_page: bool = False  # registered by the page that started it (browser-SDP mode)
    tokens: Tokens = field(default_factory=Tokens)  # the voice model's
    heard: Tokens = field(default_factory=Tokens)  # the transcription model's (what visitors said)
    billed_seconds: float | None = None  # per-minute engines: the latest cumulative count
    counted_here: bool = False  # its sideband hears OpenAI's usage: pages' reports are not needed
    counted_by_page: bool = False  # some of its usage is only what a page reported
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
        ``page`` (a page's report, bounded), or ``none``."""
        return "server" if self.counted_here else "page" if self.counted_by_page else "none"

    def count_billed(self, seconds: float) -> float:
        """A page's report of the cumulative count (never summed: the largest wins), capped by the
        call's age plus the start charge: a page cannot make a call look dearer than it can be."""
        seconds = min(seconds, self.seconds + START_CHARGE_S)
        self.billed_seconds = max(self.billed_seconds or 0.0, seconds)
        return self.billed_seconds


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
