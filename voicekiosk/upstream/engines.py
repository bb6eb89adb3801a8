"""The engine the settings choose: the one place the server tells Realtime from GPT-Live."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from voicekiosk.settings import Settings
from voicekiosk.upstream.engine import Engine
from voicekiosk.upstream.live import LiveEngine
from voicekiosk.upstream.realtime import Minter, RealtimeBroker


def open_engine(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None, tools: Sequence[dict[str, Any]] = ()
) -> tuple[Engine, Minter | None]:
    """The configured engine, and its ephemeral-key mint if it has one (only Realtime does);
    ``tools``: the tools its calls declare (Realtime only, for now)."""
    if settings.engine == "live":
        return LiveEngine(settings, transport=transport), None
    broker = RealtimeBroker(settings, transport=transport, tools=tools)
    return broker, broker
