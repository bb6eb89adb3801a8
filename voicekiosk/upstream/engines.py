"""The engine the settings choose: the one place the server tells Realtime from GPT-Live."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import httpx

from voicekiosk.settings import Settings
from voicekiosk.upstream.dialects import Dialect, LiveDialect, RealtimeDialect
from voicekiosk.upstream.engine import Engine
from voicekiosk.upstream.live import LiveEngine
from voicekiosk.upstream.realtime import Minter, RealtimeBroker
from voicekiosk.upstream.sideband import Sideband


def open_engine(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    tools: Sequence[dict[str, Any]] = (),
    sidebands: Callable[[str], Sideband | None] | None = None,
) -> tuple[Engine, Minter | None]:
    """The configured engine, and its ephemeral-key mint if it has one (only Realtime does);
    ``tools``: the tools its calls declare (function tools; on Realtime also remote MCP servers);
    ``sidebands``: a call's open sideband, if any (Live ends sessions on it)."""
    if settings.engine == "live":
        return LiveEngine(settings, transport=transport, tools=tools, sidebands=sidebands), None
    broker = RealtimeBroker(settings, transport=transport, tools=tools)
    return broker, broker


def sideband_dialect(settings: Settings) -> Dialect:
    """How the configured engine's sideband speaks of function calls."""
    return LiveDialect() if settings.engine == "live" else RealtimeDialect()
