"""What the server needs of a voice engine (Realtime, Live): make a call from a page's offer, give it
standing rules, end it."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from voicekiosk.errors import UpstreamError
from voicekiosk.ledger.prices import Minutes

if TYPE_CHECKING:
    from voicekiosk.upstream.http import UpstreamClient
    from voicekiosk.upstream.record import CallRecord

log = logging.getLogger("voicekiosk.upstream")

# A call's id as either engine gives it (rtc_…, live_…): opaque; always used with fullmatch.
CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


@dataclass(frozen=True)
class Call:
    """A call made upstream: its id (None if the engine's answer named none), OpenAI's SDP answer,
    and the milliseconds the request took."""

    call_id: str | None
    answer_sdp: str
    upstream_ms: float


@dataclass(frozen=True)
class Ended:
    """A hang-up: the milliseconds it took, and the seconds OpenAI says it billed, if it says."""

    ms: float = 0.0
    billed_seconds: float | None = None


class Engine(Protocol):
    """One upstream voice API, with the server's real key."""

    name: str  # "realtime" | "live": for logs
    max_session: float  # seconds after which OpenAI has ended any session
    upstream: UpstreamClient  # its REST requests go through it (the metrics observe it)

    async def create_call(self, offer_sdp: str) -> Call:
        """Post the page's offer, byte-exact, once (a create is billed: never retried).

        Raises:
          UpstreamError: refused, unreachable, too slow, or an answer we cannot use.
        """
        ...

    async def hang_up(self, call_id: str) -> Ended:
        """End a call upstream. A call already gone is fine (``Ended()``).

        Raises:
          UpstreamError: OpenAI could not be told.
        """
        ...

    async def instruct(self, call_id: str, rule: str) -> None:
        """Append ``rule``, the server's own words (never a page's), to a started call's standing
        instructions, confirmed by OpenAI.

        Raises:
          ApiError: this engine's page tells its session itself (409 ``not_supported``), the call
            is gone (404), or OpenAI refused it, too slowly confirmed it or could not be told.
        """
        ...

    def minutes(self, record: CallRecord) -> Minutes | None:
        """What ``record``'s call has been billed so far (``CallRecord.minutes``), if this engine
        bills by the minute; None if it bills otherwise (Realtime: tokens)."""
        ...

    async def aclose(self) -> None:
        """Release connections (calls are the registry's to end)."""
        ...


async def end_unusable(engine: Engine, call_id: str) -> None:
    """OpenAI made the call but its answer cannot be used: nobody can join it, so end it now."""
    try:
        await engine.hang_up(call_id)
    except UpstreamError as exc:
        log.warning("hang-up %s (its answer was unusable) failed: %s", call_id, exc.code)
    else:
        log.info("hang-up %s: its answer was unusable", call_id)
