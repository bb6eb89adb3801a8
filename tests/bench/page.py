"""Page figures, ours (on each engine) beside the baseline tutorial page, in one Chromium, against
one fake OpenAI.

Three pages: voicekiosk serving Realtime, voicekiosk serving GPT-Live (two processes, each with its
own data directory and certificate, made alike) and the baseline, which only speaks Realtime, on
the Realtime server's certificate. All talk to the same fake OpenAI; each run takes the three in a
rotated order, so that drift on this shared machine hits them alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import statistics
import tempfile
import wave
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

from tests.bench.broker import ENGINES, fake_openai, process, serve_args, wait_healthy
from tests.bench.greeting import GREETING, tap_to_first_word
from tests.browser import CHROMIUM, PROBE, chromium_args, silence_after
from tests.helpers import free_port, wait_for
from voicekiosk.tls.certificates import spki_sha256_b64

BASELINE = Path(__file__).with_name("baseline.html")


def baseline_app(base_url: str, key: str) -> web.Application:
    """The tutorial's server: the page, and /session minting a key upstream for it."""
    html = BASELINE.read_text(encoding="utf-8").replace("{{CALLS_URL}}", f"{base_url}/realtime/calls")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    async def session(request: web.Request) -> web.Response:
        body = {"session": {"type": "realtime", "model": "gpt-realtime-2.1", "audio": {"output": {"voice": "marin"}}}}
        async with (
            ClientSession() as client,
            client.post(
                f"{base_url}/realtime/client_secrets", json=body, headers={"Authorization": f"Bearer {key}"}
            ) as upstream,
        ):
            return web.json_response(await upstream.json())

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/session", session)
    return app


def silent_wav(path: Path, seconds: float = 20.0) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(b"\0\0" * int(48000 * seconds))
    return path


PAGES = (*ENGINES, "baseline")

# Beside the tests' PROBE (installed after it): when the page first says it is listening, its own
# "connected" (it waits for what its engine needs: the channel open, the microphone).
LISTENING = """
new MutationObserver(() => {
  if (document.querySelector("[data-state=listening]")) window.__probe.listening ??= performance.now();
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
"""
# Milliseconds from navigation to each mark, null until it happens.
MARKS = """() => ({
  connected: window.__probe.connected,
  listening: window.__probe.listening ?? null,
  session_started: (window.__probe.events.find((e) => e.type === "session.started") || {}).t ?? null,
})"""
# The marks each page must reach before a run is over, each timed: the baseline shows no state and
# has no channel events worth waiting for; a Live session takes no command before session.started.
WAIT_FOR = {
    "realtime": ("connected", "listening"),
    "live": ("connected", "listening", "session_started"),
    "baseline": ("connected",),
}


class Stack:
    """As deployed: the fake OpenAI and `voicekiosk serve` (one per engine) in processes of their
    own; the baseline's server here, on the Realtime server's certificate."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.exit = contextlib.ExitStack()
        self.runner: web.AppRunner | None = None
        self.urls: dict[str, str] = {}  # page -> its URL

    async def __aenter__(self) -> Stack:
        fake_port, fake = fake_openai(agent=True)
        key = self.exit.enter_context(fake).ready_words[-1]
        self.fake_url = f"http://127.0.0.1:{fake_port}"
        env = {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": f"{self.fake_url}/v1", "VOICEKIOSK_IDLE_TIMEOUT": "0"}
        env["VOICEKIOSK_GREETING"] = GREETING  # a visitor's tap is greeted (a page that starts by itself is not)
        spkis = []
        for engine in ENGINES:
            port, data = free_port(), self.data_dir / engine
            args = serve_args(port, data, "--engine", engine, "--rate", "10000", "--max-calls", "1000")
            self.exit.enter_context(process(args, env))
            await wait_healthy(f"https://127.0.0.1:{port}/healthz")
            self.urls[engine] = f"https://127.0.0.1:{port}/?autostart"
            spkis.append(spki_sha256_b64((data / "server.pem").read_bytes()))
        self.spki = ",".join(spkis)
        cert, key_file = self.data_dir / "realtime/server.pem", self.data_dir / "realtime/server-key.pem"
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key_file)
        self.runner = web.AppRunner(baseline_app(f"{self.fake_url}/v1", key), access_log=None)
        await self.runner.setup()
        baseline_port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", baseline_port, ssl_context=tls).start()
        self.urls["baseline"] = f"https://127.0.0.1:{baseline_port}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.runner:
            await self.runner.cleanup()
        self.exit.close()

    async def control(self, what: str, body: dict[str, Any]) -> dict[str, Any]:
        async with ClientSession() as client, client.post(f"{self.fake_url}/_fake/{what}", json=body) as response:
            return await response.json()

    async def hang_up_all(self) -> None:
        await self.control("reset", {})


async def open_connected(browser: Any, stack: Stack, name: str) -> tuple[Any, Any, dict[str, float]]:
    """A fresh context and page ``name`` once it has reached its ``WAIT_FOR`` marks, and those."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.add_init_script(PROBE)
    await page.add_init_script(LISTENING)

    async def reached() -> dict[str, float] | None:
        marks = await page.evaluate(MARKS)
        return {m: float(marks[m]) for m in WAIT_FOR[name]} if all(marks[m] for m in WAIT_FOR[name]) else None

    await page.goto(stack.urls[name])
    marks = await wait_for(reached, timeout=10, interval=0.025, what=f"the {name} page connected")
    return context, page, marks


async def connect_times(browser: Any, stack: Stack, runs: int) -> dict[str, dict[str, float]]:
    """Median ms from navigation to each mark, by mark and page: ``{"connected": {"live": 160, ...}, ...}``."""
    times: dict[str, dict[str, list[float]]] = {}
    for i in range(runs):
        for name in PAGES[i % 3 :] + PAGES[: i % 3]:
            context, _, marks = await open_connected(browser, stack, name)
            for mark, ms in marks.items():
                times.setdefault(mark, {}).setdefault(name, []).append(ms)
            await context.close()
            await stack.hang_up_all()
    return {mark: {name: statistics.median(v) for name, v in by.items()} for mark, by in times.items()}


async def main_thread_cpu(context: Any, page: Any, seconds: float) -> float:
    """Main-thread task time per second (CDP TaskDuration) over the next ``seconds``."""
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable")

    async def task_time() -> float:
        metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
        return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))

    before = await task_time()
    await asyncio.sleep(seconds)  # the window measured
    return (await task_time() - before) / seconds


async def talking_cpu(browser: Any, stack: Stack, name: str, seconds: float = 10.0) -> float:
    """Main-thread CPU per second while the agent talks."""
    context, page, _ = await open_connected(browser, stack, name)
    engine = "live" if name == "live" else "realtime"  # the baseline speaks Realtime
    await stack.control("say", {"seconds": seconds + 4, "engine": engine})
    # Any page: the agent's audio has started arriving (the baseline has no events to watch).
    heard = "(window.__probe.energy.at(-1) || {e: 0}).e > 0"
    await wait_for(lambda: page.evaluate(heard), timeout=10, what="the agent talking")
    used = await main_thread_cpu(context, page, seconds)
    await context.close()
    await stack.hang_up_all()
    return used


async def attract_cpu(browser: Any, stack: Stack, seconds: float = 10.0) -> float:
    """Main-thread CPU per second of our page waiting for a visitor: the attract screen, its glow
    breathing and its invitation turning over (no call, no microphone)."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(stack.urls["realtime"].replace("?autostart", ""))
    # Loaded and settled: the invitation has turned over once (attract.js CYCLE_MS after its start).
    turned = "document.querySelector('.invitation.current') !== document.querySelector('.invitation')"
    await wait_for(lambda: page.evaluate(turned), timeout=15, what="the attract screen's second invitation")
    used = await main_thread_cpu(context, page, seconds)
    await context.close()
    return used


async def barge_in_ms(browser: Any, stack: Stack) -> float:
    context, page, _ = await open_connected(browser, stack, "realtime")
    await wait_for(lambda: page.query_selector(".line.agent.cut"), timeout=20, what="a cut-off agent caption")
    probe = await page.evaluate("window.__probe")
    started = [e["t"] for e in probe["events"] if e["type"] == "output_audio_buffer.started"]
    heard = [e["t"] for e in probe["events"] if e["type"] == "input_audio_buffer.speech_started"]
    barge = next(t for t in heard if t > started[0])
    sampled = f"window.__probe.energy.at(-1).t > {barge + 1200}"  # 1.2 s of samples after it
    await wait_for(lambda: page.evaluate(sampled), timeout=10, what="samples after the barge-in")
    energy = (await page.evaluate("window.__probe"))["energy"]
    await context.close()
    await stack.hang_up_all()
    return silence_after(energy, barge)


async def bench_page(mic_wav: Path, runs: int = 5, *, only_greeting: bool = False) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with Stack(Path(tmp)) as stack, async_playwright() as pw:

            async def launch(mic: Path) -> Any:
                args = chromium_args(mic_wav=mic, spki=stack.spki)
                return await pw.chromium.launch(executable_path=str(CHROMIUM), headless=False, args=args)

            browser = await launch(mic_wav)
            if only_greeting:
                results["greeting"] = await tap_to_first_word(browser, stack, runs)
                await browser.close()
                return results
            for delay in (0, 150):
                await stack.control("faults", {"latency_ms": delay})
                for mark, by_page in (await connect_times(browser, stack, runs)).items():
                    results[f"{mark}_{delay}ms"] = by_page
            await stack.control("faults", {"latency_ms": 0})
            results["greeting"] = await tap_to_first_word(browser, stack, runs)
            # Realtime only: a Live page has no speech_started to time it from (the model barges in).
            results["barge_in_ms"] = statistics.median([await barge_in_ms(browser, stack) for _ in range(3)])
            await browser.close()

            browser = await launch(silent_wav(Path(tmp) / "silence.wav"))
            cpu: dict[str, list[float]] = {name: [] for name in PAGES}
            for i in range(3):
                for name in PAGES[i:] + PAGES[:i]:
                    cpu[name].append(await talking_cpu(browser, stack, name))
            results["cpu_s_per_s"] = {name: statistics.median(values) for name, values in cpu.items()}
            results["attract_cpu_s_per_s"] = statistics.median([await attract_cpu(browser, stack) for _ in range(3)])
            await browser.close()
    return results
