"""Tap -> first word of the agent: the number kiosks live by.

A visitor taps Start on a page that is waiting (loaded, its code running, no call), the page
connects and greets (``greeting`` is configured on both servers: only a tap is greeted), and the
agent's first audio plays. Both times are taken from the tap (``pointerdown``, the first the page
can know of it), in the page, by ``performance.now()``:

- connected: the peer connection's ``connectionState`` becomes ``connected`` (as the page-load
  figures time it);
- first word: the first sample where the agent's received audio has energy (``inbound-rtp``
  ``totalAudioEnergy`` > 0). That energy is of decoded samples leaving the jitter buffer, i.e. what
  the speaker is handed to play, not packets merely arriving; the probe reads it every 20 ms
  through Chromium's stats cache, so it may read late by a sample or a cache period, never early.
  The fake's greeting clip starts with speech (its silence is trimmed): no leading silence hides
  in the figure, and none is added.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from tests.browser import PROBE
from tests.helpers import wait_for

if TYPE_CHECKING:
    from tests.bench.page import Stack

GREETING = "Welcome the visitor to the museum in one short sentence."
# When the visitor's finger comes down on Start (before the click that starts the call).
TAP = """
addEventListener("pointerdown", () => { window.__probe.tap ??= performance.now(); }, { capture: true });
"""
# Milliseconds from the tap to each mark, null until both are there.
# The first event on the channel: it has opened (the greeting goes then).
MARKS = """() => {
  const p = window.__probe;
  const heard = p.energy.find((s) => s.e > 0 && s.t > p.tap);
  if (!(p.tap && p.connected && heard && p.events.length)) return null;
  return { connected: p.connected - p.tap, channel: p.events[0].t - p.tap, first_word: heard.t - p.tap };
}"""


async def tap_once(browser: Any, stack: Stack, engine: str) -> dict[str, float]:
    """One visitor: a fresh context, the waiting page, a tap; the marks from the tap."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.add_init_script(PROBE)
    await page.add_init_script(TAP)
    await page.goto(stack.urls[engine].replace("/?autostart", "/"))
    await wait_for(lambda: page.evaluate("Boolean(window.voicekiosk)"), timeout=10, what="the page's code")
    await page.click("#attract")  # the waiting screen, as a visitor taps it
    marks = await wait_for(lambda: page.evaluate(MARKS), timeout=10, interval=0.025, what=f"the {engine} greeting")
    await context.close()
    await stack.hang_up_all()
    return {name: float(ms) for name, ms in marks.items()}


async def tap_to_first_word(browser: Any, stack: Stack, runs: int) -> dict[str, dict[str, float]]:
    """Medians by engine: ``{"realtime": {"connected": 150, "channel": 190, "first_word": 380, "gap": 230},
    ...}``, ``channel`` when the first event came on the channel (it is open), ``gap`` the median of
    each run's first word less its connect time."""
    results = {}
    for engine in ("realtime", "live"):
        marks = [await tap_once(browser, stack, engine) for _ in range(runs)]
        results[engine] = {
            "connected": statistics.median(m["connected"] for m in marks),
            "channel": statistics.median(m["channel"] for m in marks),
            "first_word": statistics.median(m["first_word"] for m in marks),
            "gap": statistics.median(m["first_word"] - m["connected"] for m in marks),
        }
    return results
