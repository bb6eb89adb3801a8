"""Page figures, ours beside the baseline tutorial page, in one Chromium, against one fake peer.

Both pages are served over the same TLS certificate and talk to the same fake OpenAI; runs
alternate between the two so that drift on this shared machine hits both alike.
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

from tests.bench.broker import fake_openai, process, serve_args, wait_healthy
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


class Stack:
    """As deployed: the fake OpenAI and `voicekiosk serve` in processes of their own; the
    baseline's server here, on the same certificate."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.exit = contextlib.ExitStack()
        self.runner: web.AppRunner | None = None

    async def __aenter__(self) -> Stack:
        fake_port, fake = fake_openai(agent=True)
        key = self.exit.enter_context(fake).ready_words[-1]
        self.fake_url = f"http://127.0.0.1:{fake_port}"
        port = free_port()
        env = {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": f"{self.fake_url}/v1", "VOICEKIOSK_IDLE_TIMEOUT": "0"}
        args = serve_args(port, self.data_dir, "--rate", "10000", "--max-calls", "1000")
        self.exit.enter_context(process(args, env))
        await wait_healthy(f"https://127.0.0.1:{port}/healthz")
        self.ours = f"https://127.0.0.1:{port}/?autostart"
        cert, key_file = self.data_dir / "server.pem", self.data_dir / "server-key.pem"
        self.spki = spki_sha256_b64(cert.read_bytes())
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key_file)
        self.runner = web.AppRunner(baseline_app(f"{self.fake_url}/v1", key), access_log=None)
        await self.runner.setup()
        baseline_port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", baseline_port, ssl_context=tls).start()
        self.baseline = f"https://127.0.0.1:{baseline_port}/"
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


async def open_connected(browser: Any, url: str) -> tuple[Any, Any, float]:
    """A fresh context and page at ``url``, once its peer connection is connected."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.add_init_script(PROBE)
    await page.goto(url)
    connected = await wait_for(
        lambda: page.evaluate("window.__probe.connected"), timeout=10, interval=0.025, what=f"{url} connected"
    )
    return context, page, float(connected)


async def connect_times(browser: Any, stack: Stack, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"ours": [], "baseline": []}
    for i in range(runs):
        order = ("ours", "baseline") if i % 2 == 0 else ("baseline", "ours")
        for name in order:
            context, _, ms = await open_connected(browser, getattr(stack, name))
            times[name].append(ms)
            await context.close()
            await stack.hang_up_all()
    return {name: statistics.median(values) for name, values in times.items()}


async def talking_cpu(browser: Any, stack: Stack, url: str, seconds: float = 10.0) -> float:
    """Main-thread task time per second (CDP TaskDuration) while the agent talks."""
    context, page, _ = await open_connected(browser, url)
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    await stack.control("say", {"seconds": seconds + 4})
    # Either page: the agent's audio has started arriving (the baseline has no events to watch).
    heard = "(window.__probe.energy.at(-1) || {e: 0}).e > 0"
    await wait_for(lambda: page.evaluate(heard), timeout=10, what="the agent talking")

    async def task_time() -> float:
        metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
        return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))

    before = await task_time()
    await asyncio.sleep(seconds)  # the window measured: CPU used while the agent talks for it
    used = (await task_time() - before) / seconds
    await context.close()
    await stack.hang_up_all()
    return used


async def barge_in_ms(browser: Any, stack: Stack) -> float:
    context, page, _ = await open_connected(browser, stack.ours)
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


async def bench_page(mic_wav: Path, runs: int = 5) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with Stack(Path(tmp)) as stack, async_playwright() as pw:

            async def launch(mic: Path) -> Any:
                args = chromium_args(mic_wav=mic, spki=stack.spki)
                return await pw.chromium.launch(executable_path=str(CHROMIUM), headless=False, args=args)

            browser = await launch(mic_wav)
            for delay in (0, 150):
                await stack.control("faults", {"latency_ms": delay})
                results[f"connect_{delay}ms"] = await connect_times(browser, stack, runs)
            await stack.control("faults", {"latency_ms": 0})
            results["barge_in_ms"] = statistics.median([await barge_in_ms(browser, stack) for _ in range(3)])
            await browser.close()

            browser = await launch(silent_wav(Path(tmp) / "silence.wav"))
            cpu: dict[str, list[float]] = {"ours": [], "baseline": []}
            for _ in range(3):
                for name in ("ours", "baseline"):
                    cpu[name].append(await talking_cpu(browser, stack, getattr(stack, name)))
            results["cpu_s_per_s"] = {name: statistics.median(values) for name, values in cpu.items()}
            await browser.close()
    return results
