"""``BoundedSite``: aiohttp's TCP site with a gate on every connection.

aiohttp counts nothing per client and has no time limit on reading a request's headers, and
asyncio does TLS before a protocol learns who connected, so a device could hold a thousand
sockets in the handshake. Here each connection is counted as it is accepted (over a cap it is
closed at once), TLS is started after that (``loop.start_tls``), and a connection that has not
sent the headers of its first request ``head_timeout`` seconds after connecting (slowloris) is
cut off. Later requests on a keep-alive connection are bounded by aiohttp's keep-alive timeout,
which closes a connection that waits that long for a request's headers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from aiohttp import web
from yarl import URL

from voicekiosk.logsafe import refused_by
from voicekiosk.web.limits import Limits, Tally

log = logging.getLogger("voicekiosk.access")


class BoundedSite(web.BaseSite):
    """Like ``web.TCPSite(runner, host, port, ssl_context=...)``, with every connection through a gate.

    Args:
      connections: the tally to count connections in (shared by every site of a server).
      limits: ``head_timeout`` comes from here; the caps from ``connections``.
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str | None,
        port: int,
        *,
        connections: Tally,
        limits: Limits,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner)  # no ssl_context: the gate starts TLS after counting
        self.host, self.port = host, port
        self.tls = ssl_context
        self.connections = connections
        self.limits = limits
        self.gates: set[_Gate] = set()  # the connections counted and open

    @property
    def name(self) -> str:
        scheme = "https" if self.tls else "http"
        return str(URL.build(scheme=scheme, host=self.host or "0.0.0.0", port=self.port))

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Gate(self), self.host, self.port, backlog=self._backlog)

    async def stop(self) -> None:
        await super().stop()
        # aiohttp closes the connections it was given (gracefully); the rest are mid-handshake.
        for gate in list(self.gates):
            if gate.inner is None:
                gate.abort()

    def make_handler(self) -> asyncio.Protocol:
        server = self._runner.server
        assert server is not None
        return server()


class _Gate(asyncio.Protocol):
    """One connection between the kernel and aiohttp: counted, timed, TLS, then passed through."""

    def __init__(self, site: BoundedSite) -> None:
        self.site = site
        self.peer: str | None = None
        self.raw: asyncio.Transport | None = None
        self.inner: asyncio.Protocol | None = None  # aiohttp's handler, once TLS is up
        self.timer: asyncio.TimerHandle | None = None
        self.tail = b""  # the end of what arrived, until the first request's headers are in
        self.started = False  # its request line has begun
        self.early: list[bytes] = []  # what came with the end of the handshake, before the hand-over
        self.handshake: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if peername else None
        why = self.site.connections.take(peer)
        if why:
            log.warning("Refused a connection from %s: %s", peer, why, extra=refused_by(peer))
            transport.abort()
            return
        self.peer, self.raw = peer, transport
        self.site.gates.add(self)
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.site.limits.head_timeout, self._too_slow)
        if self.site.tls is None:
            self._hand_over(transport)
        else:
            transport.pause_reading()  # the ClientHello is for start_tls
            self.handshake = loop.create_task(self._start_tls(transport, self.site.tls))

    async def _start_tls(self, transport: asyncio.Transport, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.site.limits.head_timeout
        try:
            tls = await loop.start_tls(transport, self, context, server_side=True, ssl_handshake_timeout=timeout)
        except (OSError, asyncio.CancelledError):  # ssl.SSLError, resets, time-outs: the client's doing
            tls = None
        if tls is None or tls.is_closing():  # the client hung up during or just after the handshake
            self._release()
            transport.abort()
            return
        self._hand_over(tls)

    def _hand_over(self, transport: asyncio.Transport) -> None:
        self.inner = self.site.make_handler()
        self.inner.connection_made(transport)
        for data in self.early:
            self.inner.data_received(data)
        self.early.clear()

    def data_received(self, data: bytes) -> None:
        if self.timer is not None:
            # A blank line ends the headers (a bare LF too: the parser takes that), but not the
            # blank lines the parser skips before a request line.
            seen = (self.tail + data).replace(b"\r", b"")
            if not self.started:
                seen = seen.lstrip(b"\n")
                self.started = bool(seen)
            if b"\n\n" in seen:
                self.timer.cancel()
                self.timer = None
            self.tail = seen[-1:]
        if self.inner is not None:
            self.inner.data_received(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def abort(self) -> None:
        if self.raw is not None:
            self.raw.abort()

    def _too_slow(self) -> None:
        self.timer = None
        log.debug("Closed a connection from %s: no request in %g s", self.peer, self.site.limits.head_timeout)
        self.abort()

    def _release(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self in self.site.gates:
            self.site.gates.discard(self)
            self.site.connections.give(self.peer)
