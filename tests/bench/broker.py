"""Broker, start-up and memory figures: real processes on loopback, a load generator here."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import OFFER, SDP, free_port, wait_for
from voicekiosk.settings import EngineName, Settings
from voicekiosk.upstream.live import live_session

ENGINES: tuple[EngineName, ...] = ("realtime", "live")


@contextmanager
def process(args: list[str], env: dict[str, str] | None = None, *, ready: str | None = None, keep: int = 200):
    """A child process, stopped (SIGTERM, then SIGKILL) whatever happens; its last ``keep`` lines
    of output are its ``tail``."""
    proc = subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        if ready:
            line = proc.stdout.readline() if proc.stdout else ""
            if ready not in line:
                raise RuntimeError(f"{args[2:4]} did not start: {line}")
            proc.ready_words = line.split()  # type: ignore[attr-defined]  # what the ready line said
        # Read what it prints as a terminal would: a pipe nobody reads fills up (64 KiB), and then
        # the child blocks on its next log line (a served call per line: the tools bench's 316th).
        proc.tail = collections.deque(maxlen=keep)  # type: ignore[attr-defined]  # its last lines
        threading.Thread(target=_drain, args=(proc,), daemon=True).start()
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drain(proc: subprocess.Popen[str]) -> None:
    """Keep ``proc``'s last lines of output until it ends."""
    for line in proc.stdout or ():
        proc.tail.append(line)  # type: ignore[attr-defined]


def fake_openai(*, agent: bool = False):
    """``(port, process)`` of the fake OpenAI; the process's last ready word is its API key."""
    port = free_port()
    args = [sys.executable, "-m", "voicekiosk.fake", "--port", str(port), *(["--agent"] if agent else [])]
    return port, process(args, ready="fake OpenAI on")


def serve_args(port: int, data_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "voicekiosk", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--http-port", "0", "--data-dir", str(data_dir), "-q", *extra,
    ]  # fmt: skip


async def wait_healthy(url: str, timeout: float = 20.0) -> float:
    """Seconds until ``url`` answers 200: polled every 5 ms, as the polling is the measurement."""
    start = time.perf_counter()

    async def healthy() -> bool:
        try:
            async with session.get(url, ssl=False) as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    async with aiohttp.ClientSession() as session:
        await wait_for(healthy, timeout=timeout, interval=0.005, what=f"{url} to answer")
    return time.perf_counter() - start


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def timed(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> float:
    start = time.perf_counter()
    async with session.request(method, url, **kw) as response:
        await response.read()
        if response.status >= 300:
            raise RuntimeError(f"{url}: HTTP {response.status}")
    return (time.perf_counter() - start) * 1000


async def latencies(call: Callable[[], Awaitable[float]], n: int) -> list[float]:
    for _ in range(20):  # warm the pools
        await call()
    return [await call() for _ in range(n)]


async def throughput(call: Callable[[], Awaitable[float]], total: int, concurrency: int) -> float:
    queue = iter(range(total))

    async def worker() -> None:
        for _ in queue:
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


async def bench_broker(
    *, engine: EngineName = "realtime", tls: bool = True, requests: int = 3000, concurrency: int = 100
) -> dict[str, Any]:
    """Requests through the broker against the fake alone: rate, added latency, connections.

    ``engine``: Realtime's mints and calls (``--sdp browser``, which opens both routes), or
    GPT-Live's calls (each a ``POST /v1/live/sessions``; the fake answers with canned SDP).
    ``tls``: as deployed, HTTPS from the server's own CA, the client verifying it and keeping its
    connections alive; otherwise plain HTTP (``--no-tls``), for comparison.
    """
    fake_port, fake = fake_openai()
    port = free_port()
    with fake as fake_proc, tempfile.TemporaryDirectory() as tmp:
        key = fake_proc.ready_words[-1]
        env = {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1"}
        sdp = ("--sdp", "browser") if engine == "realtime" else ()
        extra = ("--engine", engine, *sdp, "--rate", "10000", "--max-calls", "100000", *(() if tls else ("--no-tls",)))
        with process(serve_args(port, Path(tmp), *extra), env):
            base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
            await wait_healthy(base + "/healthz")
            upstream = f"http://127.0.0.1:{fake_port}/v1"
            auth = {"Authorization": f"Bearer {key}"}
            session_json = '{"type":"realtime","model":"gpt-realtime-2.1"}'
            # What LiveEngine sends for the page's offer, byte for byte the same size.
            live_body = json.dumps(
                {"session": live_session(Settings(engine="live")), "transport": {"type": "webrtc", "sdp": OFFER}}
            )
            results: dict[str, Any] = {}
            verify = ssl.create_default_context(cafile=str(Path(tmp) / "ca.pem")) if tls else None
            connector = aiohttp.TCPConnector(limit=concurrency, ssl=verify if verify else True)  # keep-alive
            async with aiohttp.ClientSession(connector=connector) as s:

                def direct_mint() -> Awaitable[float]:
                    return timed(s, "POST", f"{upstream}/realtime/client_secrets", json={}, headers=auth)

                def direct_call() -> Awaitable[float]:
                    form = aiohttp.FormData(default_to_multipart=True)
                    form.add_field("sdp", OFFER, content_type="application/sdp")
                    form.add_field("session", session_json, content_type="application/json")
                    return timed(s, "POST", f"{upstream}/realtime/calls", data=form, headers=auth)

                def direct_live_call() -> Awaitable[float]:
                    headers = {**auth, "Content-Type": "application/json"}
                    return timed(s, "POST", f"{upstream}/live/sessions", data=live_body, headers=headers)

                def mint() -> Awaitable[float]:
                    return timed(s, "POST", base + "/api/token")

                def call() -> Awaitable[float]:
                    return timed(s, "POST", base + "/api/call", data=OFFER, headers=SDP)

                async def stats() -> dict[str, Any]:
                    async with s.get(f"http://127.0.0.1:{fake_port}/_fake/stats") as r:
                        return dict(await r.json())

                # name: (through the broker, straight to the fake, the fake's name for the endpoint)
                phases = {
                    "realtime": {"mint": (mint, direct_mint, "client_secrets"), "call": (call, direct_call, "calls")},
                    "live": {"call": (call, direct_live_call, "live_sessions")},
                }[engine]
                for name, (ours, alone, endpoint) in phases.items():
                    direct = await latencies(alone, 300)
                    before = await stats()
                    through = await latencies(ours, 300)
                    rate = await throughput(ours, requests, concurrency)
                    after = await stats()
                    # Every connection the broker opened, over every request it sent in this phase
                    # (the direct measurements above ran before, on connections of their own).
                    sent = after["requests"][endpoint] - before["requests"].get(endpoint, 0)
                    opened = after["connections"] - before["connections"]
                    results[name] = {
                        "per_second": rate,
                        "added_p50_ms": statistics.median(through) - statistics.median(direct),
                        "added_p99_ms": pct(through, 99) - pct(direct, 99),
                        "p50_ms": statistics.median(through),
                        "connections_per_100": 100 * max(opened, 0) / max(sent, 1),
                    }
    return results


async def bench_startup(runs: int = 5) -> dict[str, Any]:
    """Cold start (process spawn -> /healthz 200) and resident memory once idle."""
    starts: dict[str, list[float]] = {"http": [], "https": []}
    rss: list[float] = []
    for _ in range(runs):
        for mode in ("http", "https"):
            with tempfile.TemporaryDirectory() as tmp:
                port = free_port()
                extra = ("--no-tls",) if mode == "http" else ()
                if mode == "https":  # a returning server: its CA and certificate already exist
                    subprocess.run([sys.executable, "-m", "voicekiosk", "cert", "--data-dir", tmp], check=True,
                                   capture_output=True)  # fmt: skip
                start = time.perf_counter()
                with process(serve_args(port, Path(tmp), *extra), {"OPENAI_API_KEY": ""}) as proc:
                    await wait_healthy(f"{mode}://127.0.0.1:{port}/healthz")
                    starts[mode].append(time.perf_counter() - start)
                    if mode == "https":
                        # "Idle" is the measurement: two quiet seconds after it answered.
                        await asyncio.sleep(2)
                        rss.append(rss_mb(proc.pid))
    return {
        "cold_start_s": statistics.median(starts["http"]),
        "cold_start_tls_s": statistics.median(starts["https"]),
        "idle_rss_mb": statistics.median(rss),
    }
