"""Typed keys for the state every handler shares through ``request.app``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    pass

SETTINGS = web.AppKey("settings", "Settings")
BROKER = web.AppKey("broker", "RealtimeBroker")
CALLS = web.AppKey("calls", "CallRegistry")
EVENTS = web.AppKey("events", "EventHub")
