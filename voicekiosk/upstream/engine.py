"""What the server needs of a voice engine (Realtime, Live): make a call from a page's offer, end it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Call:
    """A call made upstream: its id (None if the engine's answer named none), OpenAI's SDP answer,
    and the milliseconds the request took."""

    call_id: str | None
    answer_sdp: str
    upstream_ms: float


class Engine(Protocol):
    """One upstream voice API, with the server's real key."""

    name: str  # "realtime" | "live": for logs

    async def create_call(self, offer_sdp: str) -> Call:
        """Post the page's offer, byte-exact, once (a create is billed: never retried).

        Raises:
          UpstreamError: refused, unreachable, too slow, or an answer we cannot use.
        """
        ...

    async def hang_up(self, call_id: str) -> float:
        """End a call upstream; the milliseconds it took. A call already gone is fine (0.0).

        Raises:
          UpstreamError: OpenAI could not be told.
        """
        ...

    async def aclose(self) -> None:
        """Release connections (calls are the registry's to end)."""
        ...
