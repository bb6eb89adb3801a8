"""Log lines a hostile LAN cannot forge, paint over or flood: the one filter on the terminal's handler.

Every record passes ``TerminalFilter`` before rich renders it: secrets are redacted, control
characters (from paths, hosts, headers, user agents, what pages send, exception text) are escaped,
aiohttp's tracebacks for malformed requests become one line, and refusals are rate-limited per
device, so a device sending a thousand bad requests cannot scroll the banner's QR codes away.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp.http_exceptions import HttpProcessingError

from voicekiosk import net
from voicekiosk.redact import redact

# C0, DEL, C1, the Unicode line separators, the bidi controls that reorder what a terminal shows,
# and lone surrogates (undecodable header bytes), which a UTF-8 terminal cannot even encode.
CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
DEVICE = "refused_device"  # the record attribute that marks a refusal, and says whose
PAGE = "page_device"  # the record attribute that marks what a device's page reported, and whose
BURST = 5  # refusal lines shown per device per window; the rest are counted
TOTAL_BURST = 50  # lines shown per window from every device together (many addresses, one flood)
MAX_REPORTS = 3  # devices whose hidden counts are told one by one; more are told as one line
PAGE_BURST = 30  # lines a device's pages may cause per window: a conversation, not a flood
WINDOW = 60.0  # seconds
MAX_DEVICES = 1024  # devices tracked at once; beyond that they share one count
MAX_REFUSAL = 240  # characters of a refusal line: an 8 KB path is no reason to fill the screen

log = logging.getLogger("voicekiosk.access")


def escape(text: str, *, keep: str = "") -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``), except ``keep``."""

    def visible(match: re.Match[str]) -> str:
        char = match.group(0)
        if char in keep:
            return char
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return CONTROL_CHARS.sub(visible, text)


def refused_by(device: str | None) -> dict[str, str]:
    """``extra=`` for a refusal's log line: shortened, and rate-limited per device."""
    return {DEVICE: device or "?"}


def from_page(device: str, **extra: str) -> dict[str, str]:
    """``extra=`` for a line a page reported (transcripts, errors, usage): rate-limited per device."""
    return {PAGE: device, **extra}


@dataclass
class _Window:
    start: float
    shown: int = 0
    hidden: int = 0


class Refusals:
    """Per device (an IPv6 /64 counts as one), the first ``burst`` lines of a ``window`` are
    shown, and at most ``total_burst`` from all devices together; the rest are counted, and the
    counts are told when the window ends (in one line when many devices were counted).

    Args:
      report: called with (device, count) for a window's hidden lines.
      burst: lines shown per device per window.
      window: seconds.
      max_devices: devices tracked at once (memory stays bounded whatever the LAN does).
      total_burst: lines shown per window from every device together.
    """

    OTHERS = "other devices"

    def __init__(
        self,
        report: Callable[[str, int], None],
        *,
        burst: int = BURST,
        window: float = WINDOW,
        max_devices: int = MAX_DEVICES,
        total_burst: int = TOTAL_BURST,
    ) -> None:
        self.report = report
        self.burst = burst
        self.window = window
        self.max_devices = max_devices
        self.total_burst = total_burst
        self._windows: dict[str, _Window] = {}  # oldest first: a window is re-added when it restarts
        self._all = _Window(-window)  # every device's lines together
        self._untold: dict[str, int] = {}  # hidden counts of ended windows, not yet reported
        self._told = -window  # when counts were last reported: at most one batch a window
        self._timer: asyncio.TimerHandle | None = None

    def allow(self, device: str) -> bool:
        """Count one refusal line of ``device``; True if it is to be shown."""
        now = time.monotonic()
        self.flush(now)
        if now - self._all.start >= self.window:
            self._all = _Window(now)
        device = net.device_of(device) if device != "?" else device
        if device not in self._windows and len(self._windows) >= self.max_devices:
            device = self.OTHERS
        window = self._windows.setdefault(device, _Window(now))
        if window.shown < self.burst and self._all.shown < self.total_burst:
            window.shown += 1
            self._all.shown += 1
            return True
        window.hidden += 1
        self._wake_at(window.start + self.window - now)
        return False

    def flush(self, now: float) -> None:
        """Forget the windows that ended; report what they hid, one batch a window at most (a
        few lines: the counts of more than ``MAX_REPORTS`` devices are told as one)."""
        ended = []
        for device, window in self._windows.items():
            if now - window.start < self.window:
                break
            ended.append(device)
        for device in ended:
            hidden = self._windows.pop(device).hidden
            if hidden:
                self._untold[device] = self._untold.get(device, 0) + hidden
        if not self._untold:
            return
        if now - self._told < self.window:
            self._wake_at(self._told + self.window - now)
            return
        untold, self._untold, self._told = self._untold, {}, now
        if len(untold) > MAX_REPORTS:
            self.report(f"{len(untold)} devices", sum(untold.values()))
        else:
            for device, count in untold.items():
                self.report(device, count)

    def _wake_at(self, delay: float) -> None:
        """Report the count on time even if the device has gone quiet (inside a running loop)."""
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: told with the next refusal after the window
        self._timer = loop.call_later(max(delay, 0.0), self._wake)

    def _wake(self) -> None:
        self._timer = None
        now = time.monotonic()
        self.flush(now)
        pending = [w.start + self.window - now for w in self._windows.values() if w.hidden]
        if self._untold:
            pending.append(self._told + self.window - now)
        if pending:
            self._wake_at(min(pending))


def report_hidden(window: float, what: str = "") -> Callable[[str, int], None]:
    """The line that stands for a window's hidden lines (``what`` they were, if not refusals)."""
    span = "minute" if window == 60 else f"{window:g} s"
    kind = f" {what}" if what else ""

    def report(device: str, count: int) -> None:
        log.warning("… and %d more%s from %s in the last %s", count, kind, escape(device), span)

    return report


class TerminalFilter(logging.Filter):
    """Makes each record safe for the operator's terminal; drops refusals and page reports over
    their rate (``pages``: a second budget, for what devices' pages report)."""

    def __init__(self, refusals: Refusals, pages: Refusals | None = None) -> None:
        super().__init__()
        self.refusals = refusals
        self.pages = pages

    def filter(self, record: logging.LogRecord) -> bool:
        _condense_bad_request(record)
        device = getattr(record, DEVICE, None)
        if device is not None and not self.refusals.allow(str(device)):
            return False
        # aiohttp's access log (-vv) names the device as remote_address: a line per request
        # shares the budget of what pages report.
        page = getattr(record, PAGE, None) or getattr(record, "remote_address", None)
        if page is not None and self.pages is not None and not self.pages.allow(str(page)):
            return False
        message = record.getMessage()
        cleaned = escape(redact(message))
        if device is not None and len(cleaned) > MAX_REFUSAL:
            cleaned = cleaned[: MAX_REFUSAL - 1] + "…"
        if cleaned != message:
            record.msg, record.args = cleaned, None
        _clean_exception(record)
        return True


def _condense_bad_request(record: logging.LogRecord) -> None:
    """aiohttp logs a malformed request (an 8 KB request line, a control character in a header)
    as "Error handling request" with a traceback: make it one line, and a refusal of its sender."""
    exc = record.exc_info[1] if record.exc_info else None
    if record.name != "aiohttp.server" or not isinstance(exc, HttpProcessingError):
        return
    remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
    reason = " ".join(str(exc.message or type(exc).__name__).split())
    record.msg, record.args = "Bad request from %s: %s", (remote, reason)
    record.exc_info = record.exc_text = None
    record.levelno, record.levelname = logging.WARNING, "WARNING"
    setattr(record, DEVICE, str(remote))


def _clean_exception(record: logging.LogRecord) -> None:
    """A traceback whose text holds a secret or a control character is shown as escaped plain text."""
    if not record.exc_info or record.exc_info[1] is None:
        return
    text = "".join(traceback.format_exception(*record.exc_info))
    safe = escape(redact(text), keep="\n")
    if safe != text:
        record.exc_info, record.exc_text = None, safe.rstrip("\n")
