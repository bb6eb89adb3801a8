"""Tool round trip through the server: the fake agent calls a function on a live call; from the
function call event on the call's sideband to the ``function_call_output`` our server sends back,
timed by the fake (its own event log), as deployed (``voicekiosk serve`` over HTTPS in a process of
its own, the webhook in another). The webhook answers at once; its own time, keep-alive POSTs
straight to it just before and after the call, is taken off: what is left is what the server adds.

What is left also holds the fake's side of each hop (this process runs the fake and the call's
media), so a second sideband that answers every function call event at once, with no tool and no
server, rides along: its round trip is that share, shown beside the figure (not taken off it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohttp import web

from tests.bench.broker import pct, process, serve_args, wait_healthy
from tests.helpers import SDP, call_id, free_port, wait_for, within
from tests.rtc_client import Client
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.call import AgentCall
from voicekiosk.fake.voice import Script

CONFIG = """[[tools]]
name = "ping"
description = "Answers at once."
url = "{url}"
parameters = {{ type = "object", properties = {{ n = {{ type = "integer" }} }} }}
"""
NUDGE = "input_audio_buffer.clear"  # what the bare sideband answers with: harmless, and logged by the fake


async def bench_tool_round_trip(calls: int = 200, warmup: int = 10, *, quiet: bool = False) -> dict[str, Any]:
    """``warmup + calls`` tool calls on one call: each the page asks for (``response.create``), the
    fake makes, the server runs and answers; the spoken reply is cancelled at once (bounded time).
    ``quiet``: serve with ``-q`` (no tool line in the terminal), else as deployed (each call shown)."""
    total = warmup + calls
    script = Script(tool_calls={i: ("ping", {"n": i}) for i in range(total)})
    fake = FakeOpenAI(answerer=AgentAnswerer(loopback_only=True, script=script))
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    fake_port, hook_port, port = free_port(), free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", fake_port).start()
    page = Client()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"http://127.0.0.1:{hook_port}/ping"
            config = Path(tmp) / "vk.toml"
            config.write_text(CONFIG.format(url=url))
            hook = [sys.executable, "-m", "tests.bench.webhook", "--port", str(hook_port)]
            env = {"OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
                   "VOICEKIOSK_IDLE_TIMEOUT": "0"}  # fmt: skip
            args = serve_args(port, Path(tmp) / "data", "--config", str(config), "--rate", "10000")
            if not quiet:
                args.remove("-q")  # the terminal shows each tool call (a line per call: the pipe holds them)
            with process(hook, ready="webhook on"), process(args, env):
                base = f"https://127.0.0.1:{port}"
                await wait_healthy(base + "/healthz")
                tls = ssl.create_default_context(cafile=str(Path(tmp) / "data" / "ca.pem"))
                own = await tool_times(url, calls // 2)  # before and after the call: the same stretch of time
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as http:
                    call = await _join(http, base, page, fake)
                    sideband = f"http://127.0.0.1:{fake_port}/v1/realtime?call_id={call.call_id}"
                    bare = await http.ws_connect(sideband, headers={"Authorization": f"Bearer {fake.api_key}"})
                    answering = asyncio.create_task(_answer_at_once(bare))
                    try:
                        async with http.ws_connect(base.replace("https", "wss") + "/api/events") as events:
                            await events.send_json({"type": "call", "call_id": call.call_id, "claim": None})
                            await _ask(page, total)
                    finally:
                        answering.cancel()
                        await asyncio.gather(answering, return_exceptions=True)
                        await bare.close()
                    async with http.delete(f"{base}/api/call/{call.call_id}") as hung_up:
                        hung_up.raise_for_status()  # now, while the fake still answers
                await page.close()
                own += await tool_times(url, calls - calls // 2)
    finally:
        await page.close()
        await runner.cleanup()
    trips, baseline = round_trips(call, "conversation.item.create"), round_trips(call, NUDGE)
    if len(trips) != total or len(baseline) != total or call.undeclared:
        raise RuntimeError(f"{len(trips)}, {len(baseline)} round trips of {total}; undeclared: {call.undeclared}")
    measured, baseline = trips[warmup:], baseline[warmup:]
    return {
        "calls": calls,
        "quiet": quiet,
        "p50_ms": statistics.median(measured),
        "p99_ms": pct(measured, 99),
        "tool_p50_ms": statistics.median(own),
        "tool_p99_ms": pct(own, 99),
        "added_p50_ms": statistics.median(measured) - statistics.median(own),
        "added_p99_ms": pct(measured, 99) - pct(own, 99),
        "bare_p50_ms": statistics.median(baseline),
        "bare_p99_ms": pct(baseline, 99),
    }


async def tool_times(url: str, n: int) -> list[float]:
    """Milliseconds of ``n`` POSTs straight to the webhook, as the server's client makes them (httpx,
    one kept-alive connection), after a warm-up; taken while no call runs here, so that this
    process's own load (the call's media) does not inflate them."""
    times = []
    async with httpx.AsyncClient(trust_env=False) as client:
        for i in range(20 + n):
            started = time.perf_counter()
            response = await client.post(url, json={"n": i})
            response.raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return times[20:]


def round_trips(call: AgentCall, answer: str) -> list[float]:
    """Milliseconds from each function call event the fake sent (``response.output_item.done``, what
    the sideband acts on) to the first ``answer`` event that came back after it."""
    out, sent = [], None
    for at, direction, kind in call.events:
        if direction == "out" and kind == "response.output_item.done":
            sent = at
        elif direction == "in" and kind == answer and sent is not None:
            out.append((at - sent) * 1000)
            sent = None
    return out


async def _answer_at_once(ws: aiohttp.ClientWebSocketResponse) -> None:
    """A sideband with nothing behind it: each function call event answered at once."""
    async for message in ws:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            event = json.loads(message.data)
            if event["type"] == "response.output_item.done" and event["item"]["type"] == "function_call":
                await ws.send_str(json.dumps({"type": NUDGE}))


async def _join(http: aiohttp.ClientSession, base: str, page: Client, fake: FakeOpenAI) -> AgentCall:
    """The page posts its offer to ``/api/call`` and joins; the fake's call, once its sideband is open."""
    ids: list[str] = []

    async def post(offer: str) -> str:
        async with http.post(base + "/api/call", data=offer, headers=SDP) as response:
            if response.status != 201:
                raise RuntimeError(f"/api/call: HTTP {response.status} {await response.text()}")
            ids.append(call_id(response))
            return await response.text()

    await within(page.connect(post), 10, "the page to join")
    await page.wait_for("session.created", timeout=10)
    call: AgentCall = fake.answerer.calls[ids[0]]  # type: ignore[attr-defined]
    await wait_for(lambda: call.sidebands == 1, timeout=10, what="the sideband")
    return call


async def _ask(page: Client, total: int) -> None:
    """``total`` tool turns, one at a time: ask, wait for the reply that speaks the output, cut it."""
    for i in range(1, total + 1):
        page.send({"type": "response.create"})
        await page.wait_for("response.created", n=2 * i, timeout=10)  # the call's, then the reply's
        page.send({"type": "response.cancel"})
        reply = await page.wait_for("response.done", n=2 * i, timeout=10)
        if reply["response"]["status"] != "cancelled":
            raise RuntimeError(f"turn {i}: {json.dumps(reply)[:200]}")
