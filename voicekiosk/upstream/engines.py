"""The engine the settings choose: the one place the server tells Realtime from GPT-Live."""

from __future__ import annotations

import httpx

from voicekiosk.settings import Settings
from voicekiosk.upstream.engine import Engine
from voicekiosk.upstream.live import LiveEngine
from voicekiosk.upstream.realtime import Minter, RealtimeBroker


def open_engine(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[Engine, Minter | None]:
    """The configured engine, and its ephemeral-key mint if it has one (only Realtime does)."""
    if settings.engine == "live":
        return LiveEngine(settings, transport=transport), None
    broker = RealtimeBroker(settings, transport=transport)
    return broker, broker
