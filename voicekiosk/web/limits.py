"""How much one device, and the LAN as a whole, may hold open; the counting; the WebSocket cap.

Connections are counted as they arrive, before TLS (``web/gate.py``); the page's event
WebSockets are counted by ``websocket_limit``. Loopback is one device with caps of its own,
outside the LAN's total: it is the kiosk's own screen, or a reverse proxy carrying every device
behind it, and a LAN that fills the total never locks it out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from voicekiosk import net
from voicekiosk.errors import ApiError
from voicekiosk.logsafe import refused_by

log = logging.getLogger("voicekiosk.access")
LOOPBACK = net.LOOPBACK_DEVICE


@dataclass(frozen=True)
class Limits:
    """The numbers. Sized for the usual 1,024 file descriptors: 512 LAN + 256 loopback connections
    leave room for the upstream, the data files and the listeners."""

    keepalive_timeout: float = 60.0  # an idle keep-alive connection is closed (aiohttp's default: an hour)
    head_timeout: float = 15.0  # from connect to the end of the first request's headers, TLS included
    per_client: int = 64  # open connections per device: a browser uses about 6 per server, a kiosk a few tabs
    total: int = 512  # open connections from every LAN device together
    loopback: int = 256  # open connections from this machine (a reverse proxy's pool, the kiosk's browser)
    websockets_per_client: int = 8  # /api/events sockets per device: one per open page
    websockets_total: int = 128  # from every LAN device together
    websockets_loopback: int = 128  # from this machine (behind a proxy: every device's pages)


LIMITS = Limits()


class Tally:
    """What each device holds open (connections, WebSockets), against a cap per device and a cap
    on the LAN's sum. Only devices holding something are kept: memory is bounded by the caps."""

    def __init__(self, per_client: int, total: int, loopback: int) -> None:
        self.per_client = per_client
        self.total = total
        self.loopback = loopback
        self.lan = 0
        self._held: dict[str, int] = {}

    def take(self, peer: str | None) -> str | None:
        """Count one more for ``peer``; or, over a cap, say which (and count nothing)."""
        device = _device(peer)
        held = self._held.get(device, 0)
        if held >= self.cap(peer):
            return f"{held} already open from this device"
        if device != LOOPBACK and self.lan >= self.total:
            return f"{self.lan} already open from the LAN"
        self._held[device] = held + 1
        if device != LOOPBACK:
            self.lan += 1
        return None

    def give(self, peer: str | None) -> None:
        """One fewer for ``peer`` (after a ``take`` that returned None)."""
        device = _device(peer)
        held = self._held.pop(device, 0) - 1
        if held > 0:
            self._held[device] = held
        if device != LOOPBACK:
            self.lan -= 1

    def held(self, peer: str | None) -> int:
        return self._held.get(_device(peer), 0)

    def cap(self, peer: str | None) -> int:
        """How many ``peer`` may hold."""
        return self.loopback if _device(peer) == LOOPBACK else self.per_client


def _device(peer: str | None) -> str:
    return net.device_of(peer)


def websocket_limit(limits: Limits = LIMITS) -> Middleware:
    """Cap the WebSockets each device holds (429), and the LAN's (503): the rest are served."""
    tally = Tally(limits.websockets_per_client, limits.websockets_total, limits.websockets_loopback)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return await handler(request)
        why = tally.take(request.remote)
        if why:
            log.warning("Refused a WebSocket from %s: %s", request.remote, why, extra=refused_by(request.remote))
            if tally.held(request.remote) >= tally.cap(request.remote):
                raise ApiError(429, "too_many_sockets", "This device has too many pages open.")
            raise ApiError(503, "server_full", "The server is busy; try again soon.", headers={"Retry-After": "10"})
        try:
            return await handler(request)
        finally:
            tally.give(request.remote)

    return middleware
