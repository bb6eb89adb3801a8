"""Typed keys for the state every handler shares through ``request.app``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from voicekiosk.access import Access
    from voicekiosk.broker import RealtimeBroker
    from voicekiosk.calls import CallRegistry
    from voicekiosk.events import EventHub
    from voicekiosk.settings import Settings
    from voicekiosk.static_files import StaticFiles

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
BROKER: web.AppKey[RealtimeBroker] = web.AppKey("broker")
CALLS: web.AppKey[CallRegistry] = web.AppKey("calls")
EVENTS: web.AppKey[EventHub] = web.AppKey("events")
ACCESS: web.AppKey[Access] = web.AppKey("access")
STATIC: web.AppKey[StaticFiles] = web.AppKey("static")
