"""The processes a soak runs: the fake OpenAI, and `voicekiosk serve` (restartable on the same
port and data directory), with what /proc says of the server."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

from aiohttp import ClientSession

from tests.bench.broker import process, rss_mb, serve_args, wait_healthy
from voicekiosk.tls.certificates import spki_sha256_b64
from voicekiosk.upstream.calls import ENDINGS

LOG_LINES = 20_000  # of the server's output kept per life: all of a soak's (-q: warnings and errors)
# What must never be in the server's output, however rough the soak: a crash or a leak's warning.
BAD_LOG = ("Traceback", "exception was never retrieved", "Unclosed", "CRITICAL", "ResourceWarning")


def orphaned(logs: list[list[str]]) -> int:
    """Calls the server hung up because no page held them (the log says so, ``ENDINGS``)."""
    return sum(ENDINGS["orphan"] in line for lines in logs for line in lines)


def bad_lines(logs: list[list[str]]) -> list[str]:
    """The lines of ``logs`` that say something crashed or leaked."""
    return [line for lines in logs for line in lines if any(bad in line for bad in BAD_LOG)]


class Fake:
    """The fake OpenAI's controls (``/_fake/...``)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def control(self, what: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with ClientSession() as client, client.post(f"{self.url}/_fake/{what}", json=body) as response:
            return response.status, dict(await response.json())

    async def stats(self) -> dict[str, Any]:
        async with ClientSession() as client, client.get(f"{self.url}/_fake/stats") as response:
            return dict(await response.json())

    async def open_calls(self) -> int:
        return sum((await self.stats())["open"].values())


class Server:
    """`voicekiosk serve` over HTTPS on ``port`` with its own ``data`` directory; ``restart()`` stops
    it (SIGTERM, as systemd would) and starts it again there. ``life`` counts its starts."""

    def __init__(self, port: int, data: Path, env: dict[str, str], *extra: str) -> None:
        self.port, self.data, self.env, self.extra = port, data, env, extra
        self.url = f"https://127.0.0.1:{port}"
        self.life = 0
        self.proc: Any = None
        self.logs: list[list[str]] = []  # each life's output (its last ``LOG_LINES``)
        self._running: contextlib.ExitStack | None = None

    async def start(self) -> None:
        self.life += 1  # from its spawn: a sample of the new process is never the old life's
        running = contextlib.ExitStack()
        args = serve_args(self.port, self.data, *self.extra)
        self.proc = running.enter_context(process(args, self.env, keep=LOG_LINES))
        self._running = running
        await wait_healthy(f"{self.url}/healthz", timeout=30)

    def stop(self) -> None:
        """Stop it (waits for it to end: up to 30 s, then SIGKILL). Safe to call twice."""
        running, proc, self._running, self.proc = self._running, self.proc, None, None
        if running is not None:
            running.close()
            self.logs.append([line.rstrip() for line in proc.tail])

    async def restart(self) -> None:
        await asyncio.to_thread(self.stop)
        await self.start()

    @property
    def spki(self) -> str:
        """Its certificate's key pin, for Chromium (the same across restarts: same data dir)."""
        return spki_sha256_b64((self.data / "server.pem").read_bytes())

    def usage(self) -> tuple[float, int] | None:
        """Its resident memory (MB) and open file descriptors now; None while it is not running."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return None
        try:
            return rss_mb(proc.pid), len(os.listdir(f"/proc/{proc.pid}/fd"))
        except FileNotFoundError:
            return None
