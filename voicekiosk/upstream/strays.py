"""``Strays``: calls that run upstream but that this server does not know (a page re-claims one made
before a crash or a restart): each is hung up from here with the real key, so that no call runs
outside the budget, the limit, /admin and the orphan rule. Bounded: made-up ids cannot make this
server send unlimited hang-ups."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from voicekiosk import net
from voicekiosk.errors import UpstreamError
from voicekiosk.upstream.engine import CALL_ID, Engine

log = logging.getLogger("voicekiosk.server")

WINDOW_S = 600.0  # the bounds below are per this many seconds
PER_DEVICE = 2  # hang-ups one device's pages may cause (a restart: one per page, reloads aside)


class Strays:
    """Hangs up calls unknown here, at most ``PER_DEVICE`` per device and ``total`` in all per
    ``WINDOW_S``; ``close`` waits for those under way."""

    def __init__(self, engine: Engine, *, total: int) -> None:
        self._engine = engine
        self._total = total
        self._done: deque[tuple[float, str]] = deque()  # (when, device) of each hang-up in the window
        self._tasks: set[asyncio.Task[None]] = set()
        self._refused = 0  # refused since the terminal was last told
        self._told_at = -WINDOW_S  # when it was (monotonic): once per window, whatever a device sends

    def hang_up(self, call_id: str, client: str) -> bool:
        """Hang up ``call_id`` upstream (in the background); False when it is not an id OpenAI could
        have given, or over the bounds."""
        now, device = time.monotonic(), net.device_of(client)
        while self._done and now - self._done[0][0] > WINDOW_S:
            self._done.popleft()
        mine = sum(1 for _, who in self._done if who == device)
        if not CALL_ID.fullmatch(call_id) or mine >= PER_DEVICE or len(self._done) >= self._total:
            self._refused += 1
            if now - self._told_at >= WINDOW_S:  # counted, not listed: made-up ids cannot flood the terminal
                log.warning(
                    "%d call(s) claimed but unknown here not hung up from here (too many of late), the last %s of %s",
                    self._refused, call_id, client,
                )  # fmt: skip
                self._refused, self._told_at = 0, now
            return False
        self._done.append((now, device))
        task = asyncio.get_running_loop().create_task(self._hang_up(call_id, client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _hang_up(self, call_id: str, client: str) -> None:
        try:
            ended = await self._engine.hang_up(call_id)
        except UpstreamError as exc:
            log.warning("hang-up %s (unknown here, claimed by %s) failed: %s", call_id, client, exc.code)
            return
        log.info("hang-up %s: claimed by %s but unknown here (made before a restart?) (%.0f ms upstream)",
                 call_id, client, ended.ms)  # fmt: skip
