"""The soak's pages in Chromium: a probe that counts connects (bounded: the page runs for minutes,
and its heap is measured), whether a page is up, its heap, and its Stop button."""

from __future__ import annotations

import json
from typing import Any

from tests.helpers import ROOT

# The page's states while its call is up (static/messages.js STATES); any other is "down".
UP = ("listening", "user-speaking", "thinking", "working", "agent-speaking")
# Installed before the page's scripts: counts each time the page goes from down to up (a connect),
# and keeps its last 50 states and last 100 falls (up to down); nothing grows with time.
PROBE = """
(() => {
  const UP = new Set(__UP__);
  const soak = (window.__soak = { connects: 0, state: null, upSince: null, recent: [], downs: [] });
  new MutationObserver(() => {
    const state = document.querySelector("main")?.dataset.state;
    if (!state || state === soak.state) return;
    if (UP.has(state) && !UP.has(soak.state)) {
      soak.connects += 1;
      soak.upSince = performance.now();
    }
    if (!UP.has(state) && UP.has(soak.state)) {
      // The call went down: when (wall clock, ms), and what the page said. Kept after this task,
      // when the problem is shown.
      const down = { at: Date.now(), state, problem: "" };
      setTimeout(() => (down.problem = document.getElementById("problem-title")?.textContent || ""), 0);
      soak.downs.push(down);
      if (soak.downs.length > 100) soak.downs.shift();
    }
    if (!UP.has(state)) soak.upSince = null;
    soak.state = state;
    soak.recent.push(state);
    if (soak.recent.length > 50) soak.recent.shift();
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });
})();
""".replace("__UP__", json.dumps(UP))

BUSY_TITLE = json.loads((ROOT / "static/i18n/en.json").read_text(encoding="utf-8"))["problem.busy.title"]


class SoakPage:
    """One page (in a context of its own) and what the soak asks of it."""

    def __init__(self, context: Any, page: Any) -> None:
        self.context, self.page = context, page
        self.errors: list[str] = []  # uncaught exceptions
        self.cdp: Any = None

    @classmethod
    async def open(cls, browser: Any, url: str) -> SoakPage:
        context = await browser.new_context()
        page = await context.new_page()
        self = cls(context, page)
        page.on("pageerror", lambda e: self.errors.append(str(e)[:300]))
        await page.add_init_script(PROBE)
        await page.goto(url)
        self.cdp = await context.new_cdp_session(page)
        await self.cdp.send("Performance.enable")
        return self

    async def soak(self) -> dict[str, Any]:
        return dict(await self.page.evaluate("window.__soak"))

    async def connects(self) -> int:
        return int(await self.page.evaluate("window.__soak.connects"))

    async def up_for(self, seconds: float) -> bool:
        """The call has been up (without a break) at least ``seconds``."""
        since = await self.page.evaluate(
            "window.__soak.upSince === null ? -1 : performance.now() - window.__soak.upSince"
        )
        return bool(since >= seconds * 1000)

    async def problem(self) -> str:
        return str(
            await self.page.evaluate(
                "document.getElementById('problem').hidden ? '' : document.getElementById('problem-title').textContent"
            )
        )

    async def heap_mb(self) -> float:
        """JS heap in use after a full collection (CDP), in MB."""
        await self.cdp.send("HeapProfiler.collectGarbage")
        metrics = (await self.cdp.send("Performance.getMetrics"))["metrics"]
        return float(next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize")) / 2**20

    async def stop(self) -> None:
        """Tap Stop (the Start/Stop button while a conversation is wanted): the page hangs up."""
        await self.page.click("#start")

    async def close(self) -> None:
        await self.context.close()
