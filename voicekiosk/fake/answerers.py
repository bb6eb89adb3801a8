"""The media side of the fake REST API: the ``Answerer`` protocol, and ``CannedAnswerer``, which has no media."""

from __future__ import annotations

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
