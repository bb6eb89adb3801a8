"""The names this server answers to: anything else in a Host header is refused (421).

A Host name we do not know is a DNS-rebinding attempt (a web page whose name now points at us,
riding on loopback's trust) or a misconfigured proxy. Both the page and the setup site check it.
"""

from __future__ import annotations

import ipaddress
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from voicekiosk import net
from voicekiosk.errors import ApiError
from voicekiosk.logsafe import refused_by
from voicekiosk.settings import Settings

log = logging.getLogger("voicekiosk.access")


def host_of(header: str) -> str:
    """The host name or address of a Host header (no port, no brackets, lower case)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        header = header.rsplit(":", 1)[0]
    return header.rstrip(".")


class KnownHosts:
    """This machine's names and addresses, ``--host`` and ``--san``; LAN addresses looked up anew."""

    REFRESH_EVERY = 10.0  # LAN addresses come and go (DHCP, Wi-Fi); look again at most this often

    def __init__(self, settings: Settings) -> None:
        fixed = [*net.loopback_names(), *net.host_names(), *settings.san]
        if not settings.binds_all:
            fixed.append(settings.host)
        self._fixed = {_canonical(name) for name in fixed}
        self._addresses: list[str] = []
        self._lan: set[str] = set()
        self._looked = -self.REFRESH_EVERY

    def __contains__(self, host: str) -> bool:
        host = _canonical(host)
        if host in self._fixed or host in self._lan:
            return True
        self.lan_addresses()
        return host in self._lan

    def lan_addresses(self) -> list[str]:
        """This machine's LAN addresses (``net.lan_addresses``), looked up at most every ``REFRESH_EVERY`` s."""
        if time.monotonic() - self._looked >= self.REFRESH_EVERY:
            self._looked = time.monotonic()
            self._addresses = net.lan_addresses()
            self._lan = {_canonical(a) for a in self._addresses}
        return self._addresses


def hosts_middleware(hosts: KnownHosts) -> Middleware:
    """Refuse requests for a Host name we do not answer to: 421 ``unknown_host``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if host_of(request.host) not in hosts:
            log.warning(
                "Refused %s %s from %s for unknown host %r",
                request.method,
                request.path,
                request.remote,
                request.host[:100],
                extra=refused_by(request.remote),
            )
            raise ApiError(421, "unknown_host", "This server does not answer to that name (add it with --san).")
        return await handler(request)

    return middleware


def _canonical(host: str) -> str:
    host = host.strip("[]").lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host
