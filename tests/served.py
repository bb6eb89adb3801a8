"""A real ``Server`` on loopback whose terminal (banner and log lines) is captured as the operator sees it.

Also used inside namespace scripts (tests/lan_flood.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import re
from collections.abc import AsyncIterator, Iterator

from rich.console import Console

from tests.helpers import free_port
from voicekiosk.console import setup_logging
from voicekiosk.logsafe import WINDOW
from voicekiosk.server import Server
from voicekiosk.settings import Settings
from voicekiosk.web.limits import LIMITS, Limits

# Any control character but the newline rich ends its lines with: none may reach the terminal.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_LOGGERS = ("voicekiosk", "aiohttp", "aiohttp.access", "asyncio", "mcp", "httpx2")


@contextlib.contextmanager
def terminal(verbosity: int = 0, *, refusal_window: float = WINDOW) -> Iterator[io.StringIO]:
    """``setup_logging`` onto a console writing to the returned buffer; the loggers restored after."""
    saved = [(logging.getLogger(n), logging.getLogger(n).handlers[:]) for n in _LOGGERS]
    state = [(lg, lg.level, lg.propagate) for lg, _ in saved]
    out = io.StringIO()
    setup_logging(verbosity, Console(file=out, width=160), refusal_window=refusal_window)
    try:
        yield out
    finally:
        for (logger, handlers), (_, level, propagate) in zip(saved, state, strict=True):
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


@dataclasses.dataclass
class Served:
    server: Server
    out: io.StringIO
    port: int

    @property
    def text(self) -> str:
        return self.out.getvalue()


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, *, verbosity: int = 0, refusal_window: float = WINDOW, limits: Limits = LIMITS
) -> AsyncIterator[Served]:
    """``settings`` served by a real ``Server`` on a free port (no setup site), terminal captured."""
    port = free_port()
    settings = dataclasses.replace(settings, port=port, http_port=0, verbosity=verbosity)
    with terminal(verbosity, refusal_window=refusal_window) as out:
        server = Server(settings, Console(file=out, width=160), limits=limits)
        await asyncio.wait_for(server.startup(), 30)
        try:
            yield Served(server, out, port)
        finally:
            await asyncio.wait_for(server.shutdown(), 30)
