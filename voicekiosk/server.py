"""Run the app: certificates, optional demo agent, listening sockets, banner, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import ipaddress
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from rich.console import Console

from voicekiosk.app import create_app
from voicekiosk.console import Endpoint, banner
from voicekiosk.errors import StartupError
from voicekiosk.settings import Settings

log = logging.getLogger("voicekiosk.server")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoints(settings: Settings, lan: list[str]) -> list[Endpoint]:
    """Every URL the page can be opened at, loopback first."""
    scheme = "https" if settings.tls else "http"

    def url(host: str) -> str:
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{settings.port}/"

    if settings.host in ("0.0.0.0", "::", ""):
        found = [Endpoint("this machine", url("localhost"))]
        for address in lan:
            if ":" in address and settings.host == "0.0.0.0":
                continue
            setup = f"http://{address}:{settings.http_port}/" if settings.http_port and settings.tls else None
            found.append(Endpoint(f"LAN {address}", url(address), setup, qr=True))
        return found
    return [Endpoint("listening on", url(settings.host), qr=not is_loopback(settings.host))]


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
    ready: Callable[[list[Endpoint]], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set or SIGINT/SIGTERM arrives.

    Raises:
      StartupError: the port is taken, the certificate cannot be loaded, ...
    """
    from voicekiosk import certs, net  # imported late: the CLI's other commands start faster

    stop = stop or asyncio.Event()
    ssl_context = certs.server_ssl_context(settings) if settings.tls else None
    lan = net.lan_addresses()
    async with demo_upstream(settings) as effective:
        runner = web.AppRunner(create_app(effective), access_log=log if settings.verbosity >= 2 else None)
        await runner.setup()
        try:
            await _bind(web.TCPSite(runner, settings.host, settings.port, ssl_context=ssl_context), settings)
            found = endpoints(settings, lan)
            notes = _notes(settings, lan)
            console.print(banner(effective, found, notes))
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop.set)
            if ready:
                await ready(found)
            await stop.wait()
            log.info("stopping: hanging up open calls")
        finally:
            await runner.cleanup()


async def _bind(site: web.TCPSite, settings: Settings) -> None:
    try:
        await site.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"Port {settings.port} is already in use on {settings.host}. "
                "Stop the other program or choose another with --port."
            ) from None
        raise StartupError(f"Cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None


def _notes(settings: Settings, lan: list[str]) -> list[str]:
    notes = []
    if not settings.api_key and not settings.demo:
        notes.append("No OpenAI API key: set OPENAI_API_KEY and restart. The page will say so.")
    if settings.host in ("0.0.0.0", "::") and not lan:
        notes.append("No LAN address found: only this machine can open the page.")
    return notes


def run(settings: Settings, console: Console) -> None:
    asyncio.run(serve(settings, console))
