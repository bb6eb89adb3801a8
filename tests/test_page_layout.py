"""The page's layouts in a real Chromium at a Pi 7" (800x480), a laptop (1280x800), a portrait
kiosk (1080x1920) and a phone (390x844), in a call (captions, something shown) and with a problem:
nothing overflows, every touch target is at least 48x48 CSS px, and the captions read from 2 m
(the agent's current sentence large, the history smaller and dimmer, the newest in view).
Screenshots: tests/artifacts/layout-<size>-<state>.png."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from tests.audio import ARTIFACTS, make_mic_wav
from tests.browser import open_page, problem_title, wait_state
from tests.helpers import REAL_KEY, free_port, png, wait_for
from tests.venue import museum
from voicekiosk.brand.contrast import ratio, rgb
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.tls.context import prepare
from voicekiosk.tools.spec import ToolsConfig

pytestmark = pytest.mark.browser

# name, viewport, the least font size (CSS px) of the agent's current sentence there
SIZES = [
    ("800x480", {"width": 800, "height": 480}, 28),
    ("1280x800", {"width": 1280, "height": 800}, 28),
    ("1080x1920", {"width": 1080, "height": 1920}, 28),
    ("390x844", {"width": 390, "height": 844}, 22),
]
TOUCH = 48  # CSS px, both ways (WCAG 2.5.5's 44, and Android's 48 dp)
# Two questions, then a long silence: what the agent shows stays up while the sizes are measured.
SPOKEN = [
    (1.5, "Hello there, I would like to visit the museum today.", 1.1),
    (0.0, "Sorry, what time do you open?", 45.0),
]
SHOWN = {
    "image": "map.png",
    "title": "Room 204",
    "text": "Second floor\nLeft of the lift",
    "link": "https://example.org/tours?from=kiosk",
}

# Everything a size is judged by, measured in the page.
MEASURE = """
() => {
  const root = document.documentElement;
  const vw = root.clientWidth, vh = root.clientHeight;
  const shown = (el) => {
    const r = el.getBoundingClientRect(); // a closed <details>' content is laid out, but not shown
    return r.width > 0 && r.height > 0 && el.checkVisibility({ visibilityProperty: true });
  };
  const name = (el) => el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${el.className || ""}`;
  const box = (el) => {
    const r = el.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom].map(Math.round);
  };
  const panels = [...document.querySelectorAll(".captions, .shown")];
  const outside = [];
  for (const el of document.querySelectorAll("main, main *")) {
    if (!shown(el) || panels.some((p) => p !== el && p.contains(el))) continue; // scrolled in its panel
    const r = el.getBoundingClientRect();
    if (r.left < -0.5 || r.top < -0.5 || r.right > vw + 0.5 || r.bottom > vh + 0.5) outside.push([name(el), box(el)]);
  }
  const parts = [...document.querySelector("main").children].filter(shown);
  const overlaps = [];
  parts.forEach((a, i) => parts.slice(i + 1).forEach((b) => {
    const r = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    const x = Math.min(r.right, q.right) - Math.max(r.left, q.left);
    const y = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
    if (x > 0.5 && y > 0.5) overlaps.push([name(a), name(b)]);
  }));
  const wide = [root, ...document.querySelectorAll("main, .controls, .captions, .shown, .problem, .status")]
    .filter((el) => el === root || shown(el))
    .filter((el) => el.scrollWidth > el.clientWidth)
    .map((el) => [name(el), el.scrollWidth, el.clientWidth]);
  const small = [...document.querySelectorAll("main button, main a[href], main summary")]
    .filter(shown)
    .map((el) => [name(el), el.getBoundingClientRect()])
    .filter(([, r]) => r.width < 48 || r.height < 48)
    .map(([n, r]) => [n, Math.round(r.width), Math.round(r.height)]);
  const captions = document.getElementById("captions");
  const lines = [...captions.querySelectorAll(".line")];
  const current = captions.querySelector(".line.current");
  const style = (el) => el && { size: parseFloat(getComputedStyle(el).fontSize), color: getComputedStyle(el).color };
  const newest = lines.at(-1)?.getBoundingClientRect();
  const frame = captions.getBoundingClientRect();
  return {
    outside, overlaps, wide, small,
    pageScrolls: root.scrollHeight > root.clientHeight,
    // Only the captions scroll: every other part shows all it holds (the meters, what the agent shows).
    spills: parts.filter((el) => el.id !== "captions" && el.scrollHeight > el.clientHeight + 1)
      .map((el) => [name(el), el.scrollHeight, el.clientHeight]),
    current: style(current),
    history: lines.slice(0, lines.indexOf(current)).map(style),
    newestInView: Boolean(newest) && newest.bottom <= frame.bottom + 1 && newest.bottom > frame.top,
    panel: getComputedStyle(captions).backgroundColor,
    lines: lines.length,
  };
}
"""

# The colour of the first opaque pixel of the agent's meter (null while it is blank).
METER_COLOUR = """
() => {
  const canvas = document.getElementById("viz-agent");
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < data.length; i += 4) if (data[i + 3] === 255) return [data[i], data[i + 1], data[i + 2]];
  return null;
}
"""


def hex_of(css: str) -> str:
    """``rgb(r, g, b)`` (as getComputedStyle gives it) as ``#rrggbb``."""
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


async def settled(page: Any) -> None:
    """After a resize: two frames, so layout, the ResizeObserver and scrolling are done."""
    await page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def check(size: str, state: str, found: dict[str, Any], *, overlaid: bool = False) -> None:
    """``overlaid``: something the visitor opened lies over the page (the parts may overlap then)."""
    where = f"{size} {state}"
    assert found["outside"] == [], f"{where}: outside the viewport (left, top, right, bottom): {found['outside']}"
    overlaps = [] if overlaid else found["overlaps"]
    assert overlaps == [], f"{where}: parts of the page overlap: {overlaps}"
    assert found["wide"] == [], f"{where}: scrolls sideways (scrollWidth, clientWidth): {found['wide']}"
    assert not found["pageScrolls"], f"{where}: the page scrolls"
    assert found["small"] == [], f"{where}: touch targets under {TOUCH}x{TOUCH} px: {found['small']}"
    assert found["spills"] == [], f"{where}: content spills out of (scrollHeight, clientHeight): {found['spills']}"


@pytest.mark.parametrize("venue", ["plain", "branded"])
async def test_in_call_layouts_fit_and_the_captions_read_from_two_metres(
    chromium, serve_app, https_settings, fake, tmp_path: Path, venue: str
):
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "map.png").write_bytes(png(480, 320))
    fake.answerer.script.tool_calls[1] = ("show", SHOWN)
    brand = museum(tmp_path) if venue == "branded" else None
    http_port = free_port()  # the setup site's link in "Talk from your phone" (nothing listens there)
    ca = prepare(dataclasses.replace(https_settings.settings, http_port=http_port)).ca
    server = await serve_app(
        https=True,
        ca=ca,
        http_port=http_port,
        tools=ToolsConfig(knowledge=folder, builtins=frozenset({"show"})),
        sideband_backoff=(0.05, 0.1),
        brand=brand,
    )
    context = await chromium.new_context(viewport=SIZES[1][1])  # one where the meters show beside the rest
    page, watch = await open_page(context, str(server.make_url("/?autostart")))
    await page.wait_for_selector("#shown:not([hidden]) img.shown-image", timeout=30_000)
    if brand is not None:  # the agent's meter is drawn in the brand's agent colour (3:1 on its background)
        drawn = await wait_for(lambda: page.evaluate(METER_COLOUR), timeout=20, what="the agent's meter drawn")
        assert drawn == list(rgb(brand.palette()["--agent"])), drawn
    said = "[...document.querySelectorAll('.line.agent')].some((l) => l.textContent.includes('On the screen now'))"
    await wait_for(lambda: page.evaluate(said), timeout=20, what="the agent's answer after showing")
    await wait_state(page, "listening")

    state = "call" if venue == "plain" else "call-branded"
    ARTIFACTS.mkdir(exist_ok=True)
    for size, viewport, least in SIZES:
        await page.set_viewport_size(viewport)
        await settled(page)
        await page.screenshot(path=ARTIFACTS / f"layout-{size}-{state}.png")
        found = await page.evaluate(MEASURE)
        check(size, state, found)
        assert found["lines"] == 4, found  # two questions, two answers
        current, history = found["current"], found["history"]
        assert current and current["size"] >= least, f"{size}: the agent's current sentence is {current}"
        panel = hex_of(found["panel"])
        for older in history:
            assert older["size"] < current["size"], f"{size}: history {older} not smaller than {current}"
            dim, bright = ratio(hex_of(older["color"]), panel), ratio(hex_of(current["color"]), panel)
            assert 4.5 <= dim < bright, f"{size}: history {older} not dimmer (yet readable) than {current}"
        assert found["newestInView"], f"{size}: the newest caption is scrolled out of view"
        # "Talk from your phone", opened: its text fits too.
        await page.click(".about summary")
        await settled(page)
        await page.screenshot(path=ARTIFACTS / f"layout-{size}-{state}-about.png")
        check(size, f"{state}, 'Talk from your phone' open", await page.evaluate(MEASURE), overlaid=True)
        await page.click(".about summary")
    assert watch.errors == [] and watch.foreign_urls() == []
    await context.close()


@pytest.mark.parametrize("venue", ["plain", "branded"])
async def test_a_problem_fits_every_size_with_its_link_and_retry_reachable(chromium, serve_app, tmp_path, venue):
    # Plain HTTP to a name that is not localhost (a phone that typed the address): the page
    # explains HTTPS and links the setup site.
    brand = museum(tmp_path) if venue == "branded" else None
    server = await serve_app(san=("voicekiosk.test",), tls=True, http_port=free_port(), brand=brand)
    context = await chromium.new_context(viewport=SIZES[0][1])
    page, watch = await open_page(context, f"http://voicekiosk.test:{server.port}/")
    await wait_for(lambda: page.evaluate("Boolean(window.voicekiosk)"), what="the page code")
    await page.click("#attract")  # a visitor taps the waiting screen
    await wait_state(page, "error")
    assert await problem_title(page) == "This page needs HTTPS for the microphone."
    assert await page.is_visible("#problem-link") and await page.is_visible("#retry")

    state = "problem" if venue == "plain" else "problem-branded"
    ARTIFACTS.mkdir(exist_ok=True)
    for size, viewport, _ in SIZES:
        await page.set_viewport_size(viewport)
        await settled(page)
        await page.screenshot(path=ARTIFACTS / f"layout-{size}-{state}.png")
        check(size, state, await page.evaluate(MEASURE))
    assert watch.errors == []
    await context.close()


@pytest.fixture(scope="module")
def mic_wav() -> Path:
    """The visitor's two questions, then silence long enough to measure every size."""
    return make_mic_wav(ARTIFACTS / "mic-layout.wav", SPOKEN)


@pytest.fixture
def fake() -> FakeOpenAI:
    script = Script(user_transcripts=[words for _, words, _ in SPOKEN])
    return FakeOpenAI(api_key=REAL_KEY, answerer=AgentAnswerer(loopback_only=True, script=script))
