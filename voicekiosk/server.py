"""Run the app: certificates, optional demo agent, listening sockets, banner, clean shutdown."""

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

from voicekiosk import net
from voicekiosk.app import create_app
from voicekiosk.console import Endpoint, banner
from voicekiosk.errors import StartupError
from voicekiosk.keys import ACCESS
from voicekiosk.settings import Settings
from voicekiosk.setup_site import create_setup_app
from voicekiosk.tls import TlsFiles

log = logging.getLogger("voicekiosk.server")
FOLLOW_EVERY = 30.0  # seconds between looks at this machine's addresses


def endpoints(settings: Settings, lan: list[str], token: str | None) -> list[Endpoint]:
    """Every URL the page can be opened at, loopback first; LAN links carry the access token."""
    scheme = "https" if settings.tls else "http"
    query = f"?token={token}" if token else ""
    with_setup = settings.tls and settings.http_port and not settings.cert

    def url(host: str, port: int, scheme: str = scheme) -> str:
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}/"

    def remote(label: str, host: str) -> Endpoint:
        setup = url(host, settings.http_port, "http") if with_setup else None
        return Endpoint(label, url(host, settings.port) + query, setup, qr=True)

    if settings.binds_all:
        found = [Endpoint("this machine", url("localhost", settings.port))]
        ipv4_only = settings.host == "0.0.0.0"
        found += [remote(f"LAN {a}", a) for a in lan if not (ipv4_only and ":" in a)]
        return found
    if net.is_loopback(settings.host):
        return [Endpoint("this machine", url(settings.host, settings.port))]
    return [remote("listening on", settings.host)]


@contextlib.asynccontextmanager
async def demo_upstream(settings: Settings) -> AsyncIterator[Settings]:
    """With ``--demo``, run the fake OpenAI on loopback and point the settings at it."""
    if not settings.demo:
        yield settings
        return
    try:
        from voicekiosk.fake.agent import AgentAnswerer
    except ImportError as exc:
        raise StartupError(
            f"--demo needs the demo extra ({exc.name} is missing): pip install 'voicekiosk[demo]'"
        ) from None
    from voicekiosk.fake import FakeOpenAI

    fake = FakeOpenAI(answerer=AgentAnswerer(loopback_only=False, vad_threshold=0.02))
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


async def serve(
    settings: Settings,
    console: Console,
    *,
    ready: Callable[[list[Endpoint], TlsFiles | None], Awaitable[None]] | None = None,
    reissued: Callable[[TlsFiles], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
    follow_every: float = FOLLOW_EVERY,
) -> None:
    """Serve until ``stop`` is set or SIGINT/SIGTERM arrives.

    Args:
      ready: called once listening, with the URLs and the certificate files.
      reissued: called when the certificate was reissued for new addresses.
      follow_every: seconds between looks at this machine's addresses.

    Raises:
      StartupError: the port is taken, the certificate cannot be loaded, ...
    """
    from voicekiosk import tls  # imported late: the CLI's other commands start faster

    stop = stop or asyncio.Event()
    files = tls.prepare(settings) if settings.tls else None
    ssl_context = tls.server_context(files) if files else None
    lan = net.lan_addresses()
    async with demo_upstream(settings) as effective:
        app = create_app(effective)
        runner = web.AppRunner(app, access_log=log if settings.verbosity >= 2 else None)
        setup_runner = None
        await runner.setup()
        try:
            await _bind(web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context), settings.port)
            if files and files.ca and settings.http_port:
                setup_app = create_setup_app(settings, files.ca)
                setup_runner = web.AppRunner(setup_app, access_log=None)
                await setup_runner.setup()
                await _bind(web.TCPSite(setup_runner, settings.host, settings.http_port), settings.http_port)
            found = endpoints(settings, lan, app[ACCESS].token)
            console.print(banner(effective, found, startup_notes(settings, lan)))
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            if ready:
                await ready(found, files)
            follower = None
            if ssl_context and files and files.ca:

                async def changed(lan: list[str], new: TlsFiles) -> None:
                    console.print(banner(effective, endpoints(settings, lan, app[ACCESS].token)))
                    if reissued:
                        await reissued(new)

                follower = asyncio.create_task(follow_addresses(settings, ssl_context, lan, follow_every, changed))
            await stop.wait()
            log.info("stopping: hanging up open calls")
            if follower:
                follower.cancel()
        finally:
            if setup_runner:
                await setup_runner.cleanup()
            await runner.cleanup()


async def follow_addresses(
    settings: Settings,
    context: ssl.SSLContext,
    known: list[str],
    every: float,
    changed: Callable[[list[str], TlsFiles], Awaitable[None]],
) -> None:
    """When this machine's addresses change (DHCP, another Wi-Fi), reissue the certificate and
    load it into the running server, so phones keep working without a restart.

    ``tls.prepare`` runs in a forked child and blocks the loop for its ~0.2 s: rare enough.
    """
    from voicekiosk import tls

    while True:
        await asyncio.sleep(every)
        now = net.lan_addresses()
        if now == known:
            continue
        try:
            files = tls.prepare(settings)
            context.load_cert_chain(files.cert, files.key)  # new handshakes get the new certificate
        except (StartupError, OSError, ssl.SSLError) as exc:
            log.error("addresses changed, but the certificate could not be reissued: %s", exc)
            continue  # tried again at the next look
        known = now
        log.info("addresses now %s: certificate reissued", ", ".join(now) or "loopback only")
        await changed(now, files)


async def _bind(site: web.TCPSite, port: int) -> None:
    try:
        await site.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"Port {port} is already in use. Stop the other program or choose another port "
                "(--port, --http-port; --http-port 0 turns the setup page off)."
            ) from None
        raise StartupError(f"Cannot listen on port {port}: {exc.strerror}") from None


def startup_notes(settings: Settings, lan: list[str]) -> list[str]:
    """What the banner must warn about."""
    notes = []
    if not settings.api_key and not settings.demo:
        notes.append("No OpenAI API key: set OPENAI_API_KEY and restart. The page will say so.")
    if settings.binds_all and not lan:
        notes.append("No LAN address found: only this machine can open the page.")
    if settings.open and not net.is_loopback(settings.host):
        notes.append("--open: any device on the network can talk, and you pay for it.")
    return notes


def run(settings: Settings, console: Console) -> None:
    asyncio.run(serve(settings, console))
