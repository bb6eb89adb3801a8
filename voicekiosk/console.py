"""The terminal: rich logging for every voicekiosk logger, and the start-up banner with QR codes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import segno
from rich.console import Console, ConsoleRenderable, Group
from rich.logging import RichHandler
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from voicekiosk.logsafe import PAGE_BURST, WINDOW, Refusals, TerminalFilter, report_hidden
from voicekiosk.settings import Settings
from voicekiosk.tls.profile import CaInfo

LEVELS = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}
MAX_QR = 3
# A conversation line's record carries ``speaker``; its label is coloured, its text never parsed.
SPEAKERS = {"you": ("you:", "bold cyan"), "agent": ("agent:", "bold magenta")}
CUT_OFF = " (cut off)"


class VoicekioskHandler(RichHandler):
    """Rich's handler, colouring who speaks in the conversation lines."""

    def render_message(self, record: logging.LogRecord, message: str) -> ConsoleRenderable:
        text = super().render_message(record, message)
        speaker = SPEAKERS.get(getattr(record, "speaker", ""))
        if speaker and isinstance(text, Text):
            label, style = speaker
            end = text.plain.find(label)
            if end >= 0:
                text.stylize(style, 0, end + len(label))
            if text.plain.endswith(CUT_OFF):
                text.stylize("dim", len(text.plain) - len(CUT_OFF))
        return text


def setup_logging(verbosity: int, console: Console | None = None, *, refusal_window: float = WINDOW) -> Console:
    """Send ``voicekiosk.*`` (and aiohttp's and asyncio's warnings) through one rich handler, made
    safe by ``logsafe``.

    ``refusal_window``: seconds over which each device's refusal lines are rate-limited.
    """
    console = console or Console(stderr=True)
    handler = VoicekioskHandler(console=console, show_path=False, markup=False, rich_tracebacks=verbosity > 0)
    refusals = Refusals(report_hidden(refusal_window), window=refusal_window)
    pages = Refusals(report_hidden(refusal_window, "lines"), burst=PAGE_BURST, window=refusal_window)
    handler.addFilter(TerminalFilter(refusals, pages))
    handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    level = LEVELS.get(verbosity, logging.DEBUG)
    # asyncio's own warnings (a TLS handshake gone wrong, a socket error) would otherwise reach
    # stderr through Python's last-resort handler, unescaped. So would the MCP SDK's (and its HTTP
    # client's), which quote what a local MCP server wrote.
    for name in ("voicekiosk", "aiohttp", "asyncio", "mcp", "httpx2"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level if name == "voicekiosk" else max(level, logging.WARNING))
        logger.propagate = False
    access = logging.getLogger("aiohttp.access")
    access.setLevel(logging.INFO if verbosity >= 2 else logging.WARNING)
    return console


@dataclass(frozen=True)
class Endpoint:
    """One address the page can be opened at."""

    label: str  # "this machine", "LAN 192.168.1.20", ...
    url: str
    setup_url: str | None = None
    qr: bool = False


def qr_text(data: str) -> Text:
    """A QR code drawn with half blocks: two modules per character row, quiet zone included."""
    matrix = [list(row) for row in segno.make(data, error="l", boost_error=False).matrix_iter(border=2)]
    if len(matrix) % 2:
        matrix.append([0] * len(matrix[0]))
    lines = []
    for top, bottom in zip(matrix[::2], matrix[1::2], strict=True):
        lines.append("".join(_HALF[(bool(t), bool(b))] for t, b in zip(top, bottom, strict=True)))
    # Black on white whatever the terminal theme: scanners need dark modules on a light field.
    return Text("\n".join(lines), style="black on white")


_HALF = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


def banner(
    settings: Settings, endpoints: Sequence[Endpoint], notes: Sequence[str] = (), ca: CaInfo | None = None
) -> Panel:
    """The start-up panel: where to open the page, how it is set up, what to watch out for, and
    the local CA's fingerprint (here, where nobody on the network can change it)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for endpoint in endpoints:
        table.add_row(endpoint.label, Text(endpoint.url, style="link " + endpoint.url))
        if endpoint.setup_url:
            table.add_row("", Text(f"first time on a phone: {endpoint.setup_url}", style="dim"))
    table.add_row("", "")
    upstream = "local demo agent (no key, no network)" if settings.demo else settings.openai_base_url
    table.add_row("agent", f"{settings.model} ({settings.engine}) · voice {settings.voice} · SDP via {settings.sdp}")
    table.add_row("upstream", upstream)
    table.add_row("config", str(settings.config_path) if settings.config_path else "flags, environment, defaults")
    if ca:
        table.add_row("CA SHA-256", Text(ca.sha256, overflow="fold"))
    parts: list[Table | Text] = [table]
    for note in notes:
        parts.append(Text(note, style="yellow"))
    # QR codes for each LAN address (a few at most: VPNs and containers add addresses nobody scans).
    for phone in [e for e in endpoints if e.qr][:MAX_QR]:
        codes = Table.grid(padding=(0, 3))
        pairs = [(f"2 · talk ({phone.label})", phone.url)]
        if phone.setup_url:
            pairs.insert(0, ("1 · first time on a phone: trust", phone.setup_url))
        for _ in pairs:
            codes.add_column()
        codes.add_row(*(Text(label, style="bold") for label, _ in pairs))
        codes.add_row(*(qr_text(url) for _, url in pairs))
        if phone.setup_url and ca:
            codes.add_row(Text(f"the CA a phone trusts must be {ca.short_fingerprint} …", style="dim"))
        parts.append(codes)
    return Panel(Group(*parts), title="voicekiosk", subtitle="Ctrl-C to stop", expand=False)
