"""The media side of the fake REST API: the ``Answerer`` protocol, ``CannedAnswerer``, which has no
media, and ``Sideband``, what a Live session offers a server attached to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Answerer(Protocol):
    """Turns an SDP offer into an answer for a new call; the real media side of the fake."""

    async def answer(self, call_id: str, offer: str, session: dict[str, Any]) -> str: ...

    async def hang_up(self, call_id: str) -> bool: ...

    async def close(self) -> None: ...


class CannedAnswerer:
    """Answers every offer with a fixed SDP and no media: enough for broker tests and benches."""

    SDP = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=setup:active\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n"
    )

    def __init__(self) -> None:
        self.calls: set[str] = set()

    async def answer(self, call_id: str, offer: str, session: dict[str, Any]) -> str:
        self.calls.add(call_id)
        return self.SDP

    async def hang_up(self, call_id: str) -> bool:
        if call_id not in self.calls:
            return False
        self.calls.discard(call_id)
        return True

    async def close(self) -> None:
        self.calls.clear()


class Sideband(Protocol):
    """A Live session as ``/v1/live/sessions/{id}/attach`` reaches it (``openai-live.md`` §4.1)."""

    def listen(self, listener: Callable[[str | None], None]) -> Callable[[], None]:
        """Pass every server event (JSON text) to ``listener``, then None when the session has ended.
        Returns what stops it."""
        ...

    def command(self, message: str | bytes, *, sideband: bool) -> None: ...
