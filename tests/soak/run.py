"""The soak: one kiosk page against `voicekiosk serve` (``--max-calls 1``) and the fake OpenAI, each
a process of its own, while the plan (``plan.py``) drops, expires and refuses its calls and
restarts the server; then a second page finds the line busy and gets in once the first hangs up.

Every wait is bounded (``wait_for``) and the run is bounded by the plan; the processes, the
browser and the temporary data directory go whatever happens (Ctrl-C included).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.bench.broker import fake_openai
from tests.browser import CHROMIUM, chromium_args
from tests.helpers import free_port, wait_for
from tests.soak.call_record import call_record_rows
from tests.soak.pages import BUSY_TITLE, SoakPage
from tests.soak.plan import REFUSE_FOR, Event, schedule
from tests.soak.report import Sample, heap, lives, unexplained
from tests.soak.stack import Fake, Server, bad_lines, orphaned

# An event strikes a call up this long: past the page's STABLE_MS (10 s, static/backoff.js), after
# which it counts the call healthy and its back-off starts afresh. (A call dropped sooner is one
# that "dies right after connecting": the page backs off from it, by design, up to 30 s.)
STRIKE_AFTER_S = 12.0
SETTLE_S = 3.0  # the call up this long before a sample is taken
RECOVER_S = 60.0  # the longest a recovery may take (a refusal: REFUSE_FOR more)
SAMPLE_EVERY = 5.0
WARM_UP_S = 30.0  # of each server life, before its growth is judged (imports, pools, first calls)
BUSY_S = 20.0  # the second page must say it is busy within this
GET_IN_S = 45.0  # and get in within this once the first hangs up (its back-off is 30 s at most)
DRAIN_S = 40.0  # no call open upstream within this at the end (the server's orphan grace: 20 s)


class Soak:
    def __init__(self, minutes: float, fake: Fake, server: Server) -> None:
        self.minutes, self.fake, self.server = minutes, fake, server
        self.plan = schedule(minutes)
        self.url = f"{server.url}/?autostart&kiosk"
        self.t0, self.wall0 = time.monotonic(), time.time()
        self.samples: list[Sample] = []
        self.applied: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.pages: list[SoakPage] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def open(self, browser: Any) -> SoakPage:
        page = await SoakPage.open(browser, self.url)
        self.pages.append(page)
        return page

    async def run(self, browser: Any) -> dict[str, Any]:
        first = await self.open(browser)
        await wait_for(lambda: first.up_for(0), timeout=RECOVER_S, what="the page's first call")
        self.t0, self.wall0 = time.monotonic(), time.time()
        sampler = asyncio.create_task(self.sample(first))
        try:
            for event in self.plan:
                await self.strike(first, event)
            if (rest := self.minutes * 60 - self.now()) > 0:
                await asyncio.sleep(rest)  # the plan's clock: the page runs on, sampled, to the end
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        seen = await first.connects() - 1  # the first connect is no reconnect
        falls = [
            {"t": d["at"] / 1000 - self.wall0, "state": d["state"], "problem": d["problem"]}
            for d in (await first.soak())["downs"]
        ]
        busy = await self.busy(browser, first)
        left = await self.drain()
        await asyncio.to_thread(self.server.stop)  # its last words (the shutdown's) are part of the figures
        stats = await self.fake.stats()
        warm_up = min(WARM_UP_S, self.minutes * 6)
        times = [e["recovered_s"] for e in self.applied if e["recovered_s"] is not None]
        return {
            "minutes": self.minutes,
            "reconnects": {
                "applied": self.applied,
                "skipped": self.skipped,
                "expected": len(self.applied),
                "seen": seen,
                "recovered": len(times),
                "median_s": statistics.median(times) if times else 0.0,
                "max_s": max(times, default=0.0),
                "falls": falls,
                "unexplained": unexplained(falls, self.applied, until=self.now()),
            },
            "server": {str(life): figure for life, figure in lives(self.samples, warm_up).items()},
            "page_heap": heap(self.samples, self.paths_run()),
            "busy": busy,
            "calls_left_open": left,
            "call_record": {"rows": call_record_rows(self.server.data), "calls": stats["made"].get("realtime", 0)},
            "page_errors": [e for page in self.pages for e in page.errors],
            "fake": stats,
            "server_log_problems": bad_lines(self.server.logs)[:50],
            "orphaned": orphaned(self.server.logs),
            "server_logs": self.server.logs,
            "samples": [asdict(s) for s in self.samples],
        }

    def paths_run(self) -> float:
        """When the page was back from the last of the one-off events (every path run once)."""
        ends = [e["at"] + e["recovered_s"] for e in self.applied if e["kind"] != "drop" and e["recovered_s"]]
        return max(ends, default=0.0) + SETTLE_S

    async def strike(self, page: SoakPage, event: Event) -> None:
        """Apply ``event`` at its time, once the page has been up ``STRIKE_AFTER_S``; wait for it to be back."""
        if (wait := event.at - self.now()) > 0:
            await asyncio.sleep(wait)  # the plan's clock: the time between events is the point
        try:
            await wait_for(lambda: page.up_for(STRIKE_AFTER_S), timeout=RECOVER_S, what="the page up")
        except AssertionError:
            self.skipped.append({"kind": event.kind, "at": self.now(), "why": "the page was not up"})
            return
        before, start = await page.connects(), time.monotonic()
        if not await self.apply(event):
            self.skipped.append({"kind": event.kind, "at": self.now(), "why": "the fake had no call to end"})
            return

        async def back() -> bool:
            return await page.connects() > before and await page.up_for(0)

        bound = RECOVER_S + (REFUSE_FOR if event.kind == "refuse" else 0.0)
        try:
            await wait_for(back, timeout=bound, interval=0.05, what=f"the page back after a {event.kind}")
            recovered: float | None = time.monotonic() - start
        except AssertionError:
            recovered = None
        self.applied.append({"kind": event.kind, "at": start - self.t0, "recovered_s": recovered})

    async def apply(self, event: Event) -> bool:
        """Do it; False if there was no call to do it to."""
        if event.kind == "restart":
            await self.server.restart()
            return True
        if event.kind == "refuse":
            faults = [{"endpoint": e, "status": 503, "seconds": REFUSE_FOR} for e in ("client_secrets", "calls")]
            status, _ = await self.fake.control("faults", {"faults": faults})
            assert status == 200, "the fake took no faults"
        status, _ = await self.fake.control("drop", {"mode": "error" if event.kind == "expire" else "close"})
        return status == 200

    async def sample(self, page: SoakPage) -> None:
        """Every ``SAMPLE_EVERY`` s while the call is settled: the server's RSS and fds, the page's heap."""
        for _ in range(int(self.minutes * 60 / SAMPLE_EVERY) * 4):  # bounded: the plan may slip
            if await page.up_for(SETTLE_S) and (life := self.server.life) and (usage := self.server.usage()):
                heap_mb = await page.heap_mb()
                self.samples.append(Sample(self.now(), life, usage[0], usage[1], heap_mb))
            await asyncio.sleep(SAMPLE_EVERY)

    async def busy(self, browser: Any, first: SoakPage) -> dict[str, Any]:
        """A second page while the first holds the only line: it must say busy, then get in."""
        await wait_for(lambda: first.up_for(SETTLE_S), timeout=RECOVER_S, what="the first page up")
        second = await self.open(browser)

        async def told() -> bool:
            return await second.problem() == BUSY_TITLE

        try:
            await wait_for(told, timeout=BUSY_S, interval=0.1, what="the second page told it is busy")
            told_busy = True
        except AssertionError:
            told_busy = False
        await first.stop()
        hung_up = time.monotonic()
        try:
            await wait_for(lambda: second.up_for(0), timeout=GET_IN_S, interval=0.1, what="the second page in")
            in_after: float | None = time.monotonic() - hung_up
        except AssertionError:
            in_after = None
        states = (await second.soak())["recent"]
        await second.stop()
        return {"told_busy": told_busy, "in_after_s": in_after, "second_states": states}

    async def drain(self) -> int:
        """Calls still open upstream once every page hung up (0, or what is left after ``DRAIN_S``)."""

        async def none_open() -> bool:
            return await self.fake.open_calls() == 0

        with contextlib.suppress(AssertionError):
            await wait_for(none_open, timeout=DRAIN_S, interval=0.2, what="no call open upstream")
        return await self.fake.open_calls()


async def soak(minutes: float, mic_wav: Path) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        fake_port, fake_process = fake_openai(agent=True)
        key = stack.enter_context(fake_process).ready_words[-1]
        fake = Fake(f"http://127.0.0.1:{fake_port}")
        env = {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": f"{fake.url}/v1", "VOICEKIOSK_IDLE_TIMEOUT": "0"}
        # -v undoes serve_args' -q: the server logs as deployed (each call and hang-up, with its reason).
        server = Server(free_port(), Path(tmp) / "data", env, "--max-calls", "1", "--rate", "10000", "-v")
        stack.callback(server.stop)
        await server.start()
        async with async_playwright() as pw:
            args = chromium_args(mic_wav=mic_wav, spki=server.spki)
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=False, args=args)
            try:
                return await Soak(minutes, fake, server).run(browser)
            finally:
                await browser.close()
