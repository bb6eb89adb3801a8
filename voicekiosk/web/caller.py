"""``PageCallers``: the ``Caller`` of each call (``tools/base.py``), as ``CallControl`` asks for
them: a call's tools tell its page through the ``EventHub``, and ``end`` asks the page to end the
call after the agent's goodbye. The server stays the authority: a call the page has not let go
of within ``END_WITHIN`` (or, with no page, after ``GOODBYE_S``) it hangs up itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voicekiosk.upstream.calls import CallRegistry
from voicekiosk.web.events import EventHub

END_WITHIN = 25.0  # seconds a page has to say the goodbye and hang up before the server does
GOODBYE_S = 6.0  # with no page: the goodbye's time (nobody hears it, but the model is mid-answer)


class PageCaller:
    """One call's ``Caller``."""

    def __init__(self, call_id: str, callers: PageCallers) -> None:
        self.call_id = call_id
        self._callers = callers

    def tell_page(self, event: Mapping[str, Any]) -> bool:
        return self._callers.hub is not None and self._callers.hub.push(self.call_id, event)

    def end(self) -> bool:
        """Ask the page to end the call after the goodbye; True if a page holds it. Either way the
        call is hung up here if it still runs after the bound."""
        told = self.tell_page({"type": "end"})
        callers = self._callers
        callers.hang_up_after(self.call_id, callers.end_within if told else callers.goodbye)
        return told


class PageCallers:
    """Makes each call's ``PageCaller`` (``CallControl(callers=...)``); ``attach`` the hub and the
    registry once they exist. A pending hang-up is the registry's (it finishes them at shutdown)."""

    def __init__(self, *, end_within: float = END_WITHIN, goodbye: float = GOODBYE_S) -> None:
        self.hub: EventHub | None = None
        self.calls: CallRegistry | None = None
        self.end_within, self.goodbye = end_within, goodbye

    def attach(self, hub: EventHub, calls: CallRegistry) -> None:
        self.hub, self.calls = hub, calls

    def __call__(self, call_id: str) -> PageCaller:
        return PageCaller(call_id, self)

    def hang_up_after(self, call_id: str, delay: float) -> None:
        """Hang ``call_id`` up in ``delay`` seconds unless it has ended by then (once per call)."""
        calls = self.calls
        record = calls.get(call_id) if calls is not None else None
        if calls is None or record is None or record.ending_asked:
            return
        record.ending_asked = True
        calls.hang_up_after(call_id, delay, "agent")
