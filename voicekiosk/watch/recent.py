"""The last problems this server logged, for ``/admin``: a bounded ring of WARNING+ records, their
text made safe as the terminal's is (``logsafe``: secrets redacted, control characters escaped),
and a flood of one kind (a device sending bad requests) kept as one entry with a count."""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass

from voicekiosk.logsafe import escape
from voicekiosk.redact import redact

SIZE = 50
MAX_TEXT = 300
# The loggers whose problems are shown: ours and those the terminal shows (console.py).
LOGGERS = ("voicekiosk", "aiohttp", "asyncio", "mcp")


@dataclass
class Problem:
    """One logged problem, or a run of the same one."""

    at: float  # time.time() of the last one
    level: str
    text: str
    count: int = 1
    kind: object = None  # what makes two records "the same": logger, level and message template


class RecentProblems(logging.Handler):
    """The last ``size`` WARNING+ records of the ``LOGGERS``, from ``attach()`` until ``detach()``."""

    def __init__(self, size: int = SIZE) -> None:
        super().__init__(logging.WARNING)
        self._ring: deque[Problem] = deque(maxlen=size)

    def attach(self) -> None:
        for name in LOGGERS:
            logging.getLogger(name).addHandler(self)

    def detach(self) -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            kind = (record.name, record.levelno, record.msg)
            text = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                text += f" ({record.exc_info[0].__name__})"
            text = escape(redact(text))
            if len(text) > MAX_TEXT:
                text = text[: MAX_TEXT - 1] + "…"
            last = self._ring[-1] if self._ring else None
            if last is not None and last.kind == kind:
                last.at, last.text, last.count = record.created, text, last.count + 1
            else:
                self._ring.append(Problem(record.created, record.levelname, text, kind=kind))
        except Exception:
            self.handleError(record)

    def problems(self) -> list[Problem]:
        """Newest first."""
        self.acquire()  # records may come from other threads
        try:
            return list(reversed(self._ring))
        finally:
            self.release()


def clock_time(at: float) -> str:
    """``at`` as the server's local wall-clock time, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
