"""The calls this server knows of: which may be hung up, how many run, whom they belong to."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from voicekiosk.broker import RealtimeBroker
from voicekiosk.errors import UpstreamError

log = logging.getLogger("voicekiosk.server")


@dataclass
class CallRecord:
    call_id: str
    client: str
    started: float = field(default_factory=time.monotonic)
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


class CallRegistry:
    """Active calls by id, and the way to end them. Everything runs on the event loop."""

    def __init__(self, broker: RealtimeBroker) -> None:
        self._broker = broker
        self._calls: dict[str, CallRecord] = {}

    def add(self, call_id: str, client: str) -> CallRecord:
        record = self._calls.get(call_id)
        if record is None:
            record = self._calls[call_id] = CallRecord(call_id, client)
        return record

    def get(self, call_id: str) -> CallRecord | None:
        return self._calls.get(call_id)

    def forget(self, call_id: str) -> CallRecord | None:
        return self._calls.pop(call_id, None)

    def __len__(self) -> int:
        return len(self._calls)

    async def hang_up(self, call_id: str, *, reason: str) -> None:
        """Forget the call and tell OpenAI to end it.

        Raises:
          UpstreamError: OpenAI could not be told (logged here already).
        """
        record = self._calls.pop(call_id, None)
        try:
            ms = await self._broker.hang_up(call_id)
        except UpstreamError as exc:
            log.warning("hang-up %s %s failed: %s", call_id, reason, exc.code)
            raise
        duration = f" after {record.seconds:.0f} s" if record else ""
        log.info("hang-up %s %s%s (%.0f ms upstream)", call_id, reason, duration, ms)

    async def hang_up_all(self) -> None:
        """End every call: at shutdown nobody should pay for a session no page can use."""
        calls = [self.hang_up(call_id, reason="at shutdown") for call_id in list(self._calls)]
        await asyncio.gather(*calls, return_exceptions=True)
