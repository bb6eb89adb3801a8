"""The server's lifecycle: TLS, the demo agent, the page and setup sites, the banner, following
this machine's addresses, and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from rich.console import Console

from voicekiosk import datadir, net
from voicekiosk.console import banner
from voicekiosk.errors import StartupError
from voicekiosk.notices import endpoints, startup_notes, warn_about
from voicekiosk.redact import register_secret
from voicekiosk.service.notify import StatusLine, Systemd
from voicekiosk.settings import Settings
from voicekiosk.tls.context import TlsFiles, load_certificate, prepare, server_context
from voicekiosk.web.access import TOKEN_FILE, Access, read_token
from voicekiosk.web.app import create_app
from voicekiosk.web.appkeys import ACCESS, CALLS
from voicekiosk.web.gate import BoundedSite
from voicekiosk.web.limits import LIMITS, Limits, Tally
from voicekiosk.web.setup_site import create_setup_app

log = logging.getLogger("voicekiosk.server")
FOLLOW_EVERY = 30.0  # seconds between looks at this machine's addresses
TOKEN_EVERY = 2.0  # seconds between looks at the access token file (a stat)

Reissued = Callable[[TlsFiles], Awaitable[None]]


class Server:
    """One voicekiosk server.

    ``serve()`` runs it until ``should_exit`` is set or SIGINT/SIGTERM arrives. Whoever runs
    something beside it (the kiosk's browser) calls ``startup()``, waits on ``should_exit``,
    then ``shutdown()``.

    Args:
      settings: the configuration.
      console: where the banner goes.
      follow_every: seconds between looks at this machine's addresses.
      token_every: seconds between looks at the access token file (``voicekiosk token --rotate``).
      limits: the connection and WebSocket caps and time-outs.
      systemd: the service manager to tell (default: the one ``NOTIFY_SOCKET`` names, if any).
    """

    def __init__(
        self,
        settings: Settings,
        console: Console,
        *,
        follow_every: float = FOLLOW_EVERY,
        token_every: float = TOKEN_EVERY,
        limits: Limits = LIMITS,
        systemd: Systemd | None = None,
    ) -> None:
        self.settings = settings
        self.console = console
        self.follow_every = follow_every
        self.token_every = token_every
        self.should_exit = asyncio.Event()
        self.files: TlsFiles | None = None  # the certificate being served (None without TLS)
        self.on_reissue: list[Reissued] = []  # told when the certificate changed for new addresses
        self.limits = limits
        self.systemd = systemd or Systemd.from_environ()
        self.app: web.Application | None = None  # the talking page's app, once started
        self.connections = Tally(limits.per_client, limits.total, limits.loopback)  # every site's, counted together
        self._token: str | None = None
        self._lan: list[str] = []  # this machine's LAN addresses, as last seen
        self._upstream = settings  # the settings the app was made with (--demo: pointed at the demo agent)
        self._stack = contextlib.AsyncExitStack()
        self._follower: asyncio.Task[None] | None = None
        self._token_watch: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    async def serve(self) -> None:
        """Start, serve until told to stop, stop.

        Raises:
          StartupError: the port is taken, the certificate cannot be loaded, ...
        """
        await self.startup()
        try:
            await self.should_exit.wait()
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        """Prepare TLS, listen, show the banner and start following address changes.

        Raises:
          StartupError: as ``serve``; whatever had started is stopped again.
        """
        settings = self.settings
        self.files = prepare(settings) if settings.tls else None
        context = server_context(self.files) if self.files else None
        if self.files:
            warn_about(self.files)
        self._lan = net.lan_addresses()
        try:
            self._upstream = await self._stack.enter_async_context(demo_upstream(settings))
            self.app = app = create_app(self._upstream, ca=self.files.ca if self.files else None, limits=self.limits)
            self._token = app[ACCESS].token
            await self._listen(app, settings.port, context, log if settings.verbosity >= 2 else None)
            if self.files and self.files.ca and settings.has_setup_site:
                await self._listen(create_setup_app(settings, self.files.ca), settings.http_port)
        except BaseException:
            await self._stack.aclose()
            raise
        self._show_banner(startup_notes(settings, self._lan))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.should_exit.set)
        if context and self.files and self.files.ca:
            self._follower = asyncio.create_task(self._follow(context))
        if self._token is not None:
            self._token_watch = asyncio.create_task(self._watch_token(app[ACCESS]))
        serving = f"serving on port {settings.port} ({settings.engine})"
        status = StatusLine(self.systemd, serving, lambda: len(app[CALLS]))
        app[CALLS].observe(status)
        status.update("READY=1")
        self._watchdog = asyncio.create_task(self.systemd.keep_alive())

    async def shutdown(self) -> None:
        """Stop following, hang up open calls, close the sites (and the demo agent)."""
        log.info("stopping: hanging up open calls")
        self.systemd.notify("STOPPING=1", "STATUS=stopping: hanging up open calls")
        tasks = [task for task in (self._follower, self._token_watch, self._watchdog) if task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stack.aclose()

    def _show_banner(self, notes: list[str] | None = None) -> None:
        """The banner, listing only the addresses the certificate covers."""
        left_out = self.files.left_out if self.files else ()
        reachable = [address for address in self._lan if address not in left_out]
        ca = self.files.ca if self.files else None
        self.console.print(banner(self._upstream, endpoints(self.settings, reachable, self._token), notes or [], ca))

    async def _listen(
        self,
        app: web.Application,
        port: int,
        context: ssl.SSLContext | None = None,
        access_log: logging.Logger | None = None,
    ) -> None:
        runner = web.AppRunner(app, access_log=access_log, keepalive_timeout=self.limits.keepalive_timeout)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = BoundedSite(
            runner, self.settings.host, port, connections=self.connections, limits=self.limits, ssl_context=context
        )
        try:
            await site.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"Port {port} is already in use. Stop the other program or choose another port "
                    "(--port, --http-port; --http-port 0 turns the setup page off)."
                ) from None
            raise StartupError(f"Cannot listen on port {port}: {exc.strerror}") from None

    async def _follow(self, context: ssl.SSLContext) -> None:
        """When this machine's addresses change (DHCP, another Wi-Fi), reissue the certificate and
        load it into the running server, so phones keep working without a restart.

        ``prepare`` runs in a forked child and blocks the loop for its ~0.2 s: rare enough.
        """
        while True:
            await asyncio.sleep(self.follow_every)
            now = net.lan_addresses()
            if now == self._lan:
                continue
            try:
                files = prepare(self.settings)
                load_certificate(context, files)  # new handshakes get the new certificate
            except (StartupError, OSError) as exc:
                log.error("addresses changed, but the certificate could not be reissued: %s", exc)
                continue  # tried again at the next look
            if files.left_out != (self.files.left_out if self.files else ()):
                warn_about(files)
            self.files, self._lan = files, now
            log.info("addresses now %s: certificate reissued", ", ".join(now) or "loopback only")
            self._show_banner()
            for listener in self.on_reissue:
                await listener(files)

    async def _watch_token(self, access: Access) -> None:
        """When ``voicekiosk token --rotate`` replaces the token, use the new one: old cookies and
        QR links stop working, and the banner shows the new links."""
        path = self.settings.data_dir / TOKEN_FILE
        seen = datadir.stamp(path)
        while True:
            await asyncio.sleep(self.token_every)
            now = datadir.stamp(path)
            if now == seen:
                continue
            seen = now
            try:
                token = read_token(path)
            except StartupError as exc:
                log.error("the access token file changed but cannot be used (the old token still works): %s", exc)
                continue
            if token == access.token:
                continue
            register_secret(token)
            access.token = self._token = token
            log.warning("access token replaced: devices let in before must scan the new QR code")
            self._show_banner()


@contextlib.asynccontextmanager
async def demo_upstream(settings: Settings) -> AsyncIterator[Settings]:
    """With ``--demo``, run the fake OpenAI on loopback and point the settings at it."""
    if not settings.demo:
        yield settings
        return
    try:
        from voicekiosk.fake.agent import AgentAnswerer
        from voicekiosk.fake.live_agent import LiveAnswerer
    except ImportError as exc:
        raise StartupError(
            f"--demo needs the demo extra ({exc.name} is missing): pip install 'voicekiosk[demo]'"
        ) from None
    from voicekiosk.fake import FakeOpenAI

    # Both engines' agents, hearing a room rather than a test's clean signal.
    fake = FakeOpenAI(
        answerer=AgentAnswerer(loopback_only=False, vad_threshold=0.02),
        live=LiveAnswerer(loopback_only=False, vad_threshold=0.02, usage_every=20.0),
    )
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    log.info("demo agent listening on 127.0.0.1:%d", port)
    try:
        yield dataclasses.replace(settings, openai_base_url=f"http://127.0.0.1:{port}/v1", api_key=fake.api_key)
    finally:
        await runner.cleanup()


def run(settings: Settings, console: Console) -> None:
    """``voicekiosk serve``: serve until Ctrl-C or SIGTERM."""
    asyncio.run(Server(settings, console).serve())
