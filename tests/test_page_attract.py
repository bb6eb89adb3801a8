"""The attract screen and the kiosk that never looks broken, in a real Chromium over real TLS
against the fake's peers (loopback only): shown before the first visitor and after the idle
hang-up, a tap anywhere on it connects (greeted), the screen is kept awake (Screen Wake Lock, asked
for again when the page is shown again), kiosk mode refuses selection, the context menu and zoom,
and an idle screen dims under a veil that a tap lifts. Screenshots of each layout as artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser import ARTIFACTS, open_page, state_count, wait_state
from tests.helpers import REAL_KEY, wait_for
from voicekiosk.brand.config import parse_brand
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.live_agent import LiveAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.languages import table

pytestmark = pytest.mark.browser

HEARD = ["Hello there, I would like to visit the museum today.", "Sorry, what time do you open?"]
CALL_UP = ("listening", "user-speaking", "thinking", "agent-speaking")
GREETING = "Welcome the visitor to the museum in one short sentence."
LAYOUTS = {"pi": (800, 480), "laptop": (1280, 800), "portrait": (1080, 1920), "phone": (390, 844)}
LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="240" height="80">'
    b'<rect width="240" height="80" rx="12" fill="#1d4ed8"/></svg>'
)

ATTRACT = """() => {
  const attract = document.getElementById("attract");
  const box = attract.getBoundingClientRect();
  const current = attract.querySelector(".invitation.current");
  return {
    shown: !attract.hidden && box.width > 0 && box.height > 0,
    invitation: current ? current.textContent : null,
    start_shown: document.getElementById("start").getBoundingClientRect().height > 0,
  };
}"""


@pytest.fixture
def answerer() -> AgentAnswerer:
    return AgentAnswerer(loopback_only=True, script=Script(user_transcripts=HEARD))


@pytest.fixture
def live() -> LiveAnswerer:
    return LiveAnswerer(script=Script(user_transcripts=HEARD))


@pytest.fixture
def fake(answerer: AgentAnswerer, live: LiveAnswerer) -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY, answerer=answerer, live=live)


@pytest.fixture
def serve_page(serve_app: Any) -> Any:
    """Our app over HTTPS (settings overridable); ``await serve_page(path, **settings)`` -> the URL."""

    async def start(path: str = "/", **overrides: Any) -> str:
        server = await serve_app(https=True, **overrides)
        return str(server.make_url(path))

    return start


async def attract(page: Any) -> dict[str, Any]:
    return dict(await page.evaluate(ATTRACT))


async def page_code(page: Any) -> None:
    await wait_for(lambda: page.evaluate("Boolean(window.voicekiosk)"), what="the page's code")


async def test_the_attract_screen_invites_and_a_tap_anywhere_on_it_starts_a_greeted_call(
    chromium, serve_page, live
) -> None:
    url = await serve_page(engine="live", model="gpt-live-1.1", greeting=GREETING)
    context = await chromium.new_context(viewport={"width": 1280, "height": 800})
    page, watch = await open_page(context, url)
    await page_code(page)
    await wait_state(page, "idle")
    shown = await attract(page)
    assert shown == {"shown": True, "invitation": "Tap to talk", "start_shown": False}
    # The invitation turns over by itself ("Say hello"), and back.
    await wait_for(lambda: _invitation_is(page, "Say hello"), timeout=10, what="the second invitation")
    await wait_for(lambda: _invitation_is(page, "Tap to talk"), timeout=10, what="the first one again")
    # The screen is kept awake from the start.
    await wait_for(lambda: page.evaluate("window.__probe.wakeLocks.length >= 1"), what="a wake lock")
    [asked] = await page.evaluate("window.__probe.wakeLocks")
    assert asked["type"] == "screen"

    await page.mouse.click(40, 780)  # a corner, far from the words: anywhere will do
    await wait_state(page, *CALL_UP)
    assert not (await attract(page))["shown"]
    [session] = live.calls.values()
    # A visitor's tap: greeted, as the Start button's is.
    await wait_for(lambda: _said(session, "session.commentary.append"), what="the greeting")
    assert _said(session, "session.commentary.append")[0]["content"] == GREETING
    assert watch.errors == []
    await context.close()


async def test_the_attract_screen_returns_after_the_idle_hang_up_and_a_voice_still_wakes_the_page(
    chromium, serve_page, fake
) -> None:
    url = await serve_page("/?autostart", idle_timeout=2)
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, *CALL_UP)
    assert not (await attract(page))["shown"]
    # The fake mic falls silent for 4.5 s after its second sentence: long enough to pause.
    await wait_state(page, "paused", timeout=25)
    await wait_for(lambda: len(fake.recorded("hangup")) == 1, what="the idle call hung up")
    assert (await attract(page))["shown"]
    since = await state_count(page)
    # Then the mic speaks again: the page wakes by itself (the attract screen goes).
    await wait_state(page, *CALL_UP, since=since, timeout=25)
    await wait_for(lambda: _attract_gone(page), what="the attract screen gone")
    assert watch.errors == []
    await context.close()


async def test_the_wake_lock_is_taken_again_when_the_page_is_shown_again(chromium, serve_page) -> None:
    url = await serve_page()
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_for(lambda: page.evaluate("window.__probe.wakeLocks[0]?.granted"), what="a wake lock granted")
    # Headless Chromium cannot hide a page (Playwright keeps every page visible and active: neither
    # another tab in front nor a minimised window hides it), so what the browser does to a hidden
    # page that is shown again is played here: its lock released, then a visibilitychange.
    await page.evaluate(
        "window.__probe.sentinels[0].release().then(() => document.dispatchEvent(new Event('visibilitychange')))"
    )
    await wait_for(lambda: page.evaluate("window.__probe.wakeLocks[1]?.granted"), what="the lock taken again")
    assert [lock["type"] for lock in await page.evaluate("window.__probe.wakeLocks")] == ["screen", "screen"]
    assert watch.errors == []
    await context.close()


async def test_kiosk_mode_refuses_selection_the_context_menu_and_zoom_and_hides_a_resting_cursor(
    chromium, serve_page
) -> None:
    url = await serve_page("/?autostart&kiosk")
    context = await chromium.new_context(viewport={"width": 1280, "height": 800})
    page, watch = await open_page(context, url)
    await page_code(page)
    await wait_state(page, *CALL_UP)
    kiosk = await page.evaluate(
        """() => ({
          select: getComputedStyle(document.querySelector("main")).userSelect,
          touch: getComputedStyle(document.querySelector("main")).touchAction,
          viewport: document.querySelector("meta[name=viewport]").content,
        })"""
    )
    assert kiosk["select"] == "none" and kiosk["touch"] == "pan-x pan-y"
    assert "user-scalable=no" in kiosk["viewport"] and "maximum-scale=1" in kiosk["viewport"]
    # A real double click on a word selects nothing here (and does once the kiosk class is gone).
    selected = "document.getSelection().toString().trim()"
    await page.dblclick("#state-label")
    assert await page.evaluate(selected) == ""
    await page.evaluate("document.querySelector('main').classList.remove('kiosk')")
    await page.dblclick("#state-label")
    assert await page.evaluate(selected) != ""
    # A real right click: the page refuses the context menu.
    await page.evaluate("addEventListener('contextmenu', (e) => (window.__menuRefused = e.defaultPrevented))")
    await page.click("#captions", button="right")
    assert await page.evaluate("window.__menuRefused") is True

    # The cursor hides when the mouse rests, shows when it moves, and hides again.
    cursor = "document.documentElement.classList.contains('no-cursor') && getComputedStyle(document.body).cursor"
    await wait_for(lambda: page.evaluate(cursor), timeout=10, what="the cursor hidden")
    assert await page.evaluate(cursor) == "none"
    await page.mouse.move(200, 200)
    await page.mouse.move(210, 220)
    assert await page.evaluate(cursor) is False
    await wait_for(lambda: page.evaluate(cursor), timeout=10, what="the cursor hidden again")
    assert watch.errors == []
    await context.close()


async def test_kiosk_behaviours_stay_off_outside_kiosk_mode(chromium, serve_page) -> None:
    url = await serve_page()
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await page_code(page)
    viewport = await page.evaluate("document.querySelector('meta[name=viewport]').content")
    assert "user-scalable" not in viewport
    assert await page.evaluate("getComputedStyle(document.querySelector('main')).userSelect") != "none"
    assert (
        await page.evaluate(
            """() => {
          const menu = new MouseEvent("contextmenu", { bubbles: true, cancelable: true });
          document.body.dispatchEvent(menu);
          return menu.defaultPrevented;
        }"""
        )
        is False
    )
    assert watch.errors == []
    await context.close()


async def test_an_idle_screen_dims_after_dim_after_and_a_tap_wakes_it_into_a_call(chromium, serve_page) -> None:
    url = await serve_page(dim_after=0.05)  # minutes: 3 s
    context = await chromium.new_context(viewport={"width": 800, "height": 480})
    page, watch = await open_page(context, url)
    await page_code(page)
    await wait_state(page, "idle")
    assert not await _dimmed(page)
    await wait_for(lambda: _dimmed(page), timeout=15, what="the screen dimmed")
    # A dark veil, not a blank screen: the invitation still shows through it.
    veil = "parseFloat(getComputedStyle(document.getElementById('veil')).opacity)"
    await wait_for(lambda: page.evaluate(f"{veil} >= 0.8"), timeout=10, what="the veil drawn")
    assert (await attract(page))["shown"]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "attract-dimmed.png")

    await page.mouse.click(400, 60)
    await wait_for(lambda: _undimmed(page), what="the screen awake")
    await wait_state(page, *CALL_UP)  # the tap was a visitor's too
    assert not await _dimmed(page)
    assert watch.errors == []
    await context.close()


async def test_the_attract_screen_fits_every_layout_with_the_venue_and_every_language(
    chromium, serve_page, tmp_path: Path
) -> None:
    (tmp_path / "logo.svg").write_bytes(LOGO)
    brand = parse_brand({"title": "City Museum", "logo": "logo.svg"}, tmp_path / "voicekiosk.toml")
    url = await serve_page(brand=brand, languages=("en", "de", "fr"))
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await page_code(page)
    await page.wait_for_function("document.querySelector('.attract-logo').complete")
    listed = await page.evaluate("[...document.querySelectorAll('.invitation')].map((e) => [e.textContent, e.lang])")
    assert listed == [[table(code)[key], code] for code in ("en", "de", "fr") for key in ("attract.tap", "attract.say")]
    ARTIFACTS.mkdir(exist_ok=True)
    for name, (width, height) in LAYOUTS.items():
        await page.set_viewport_size({"width": width, "height": height})
        fit = await page.evaluate(FIT)
        await page.screenshot(path=ARTIFACTS / f"attract-{name}.png")
        assert fit["page"] == [width, height], f"the {name} layout overflows: {fit}"
        assert fit["outside"] == [], f"{name}: outside the {width}x{height} viewport: {fit['outside']}"
        assert fit["cut"] == [], f"{name}: words cut off: {fit['cut']}"
        assert fit["invite_px"] >= 32, f"{name}: the invitation is small ({fit['invite_px']} px)"
    assert await page.evaluate("document.getElementById('problem').hidden")
    assert watch.errors == []
    await context.close()


async def test_with_reduced_motion_nothing_moves(chromium, serve_page) -> None:
    url = await serve_page()
    context = await chromium.new_context(reduced_motion="reduce")
    page, watch = await open_page(context, url)
    await page_code(page)
    moving = await page.evaluate(
        """() => ({
          glow: getComputedStyle(document.querySelector(".attract-glow")).animationName,
          turn: getComputedStyle(document.querySelector(".invitation")).transitionDuration,
        })"""
    )
    assert moving == {"glow": "none", "turn": "0s"}
    assert (await attract(page))["invitation"] == "Tap to talk"  # still there, still turning over (unanimated)
    assert watch.errors == []
    await context.close()


# What lies outside the viewport or overflows its box, on the attract screen (layout only).
FIT = """() => {
  const [w, h] = [innerWidth, innerHeight];
  const parts = [...document.querySelectorAll(".attract-logo, .attract-title, .invite, .invitation")];
  const name = (e) => e.className + ":" + (e.textContent || "").slice(0, 20);
  return {
    page: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
    outside: parts.filter((e) => {
      const r = e.getBoundingClientRect();
      return r.left < 0 || r.top < 0 || r.right > w || r.bottom > h;
    }).map(name),
    cut: parts.filter((e) => e.scrollWidth > e.clientWidth + 1).map(name),
    invite_px: parseFloat(getComputedStyle(document.querySelector(".invite")).fontSize),
  };
}"""


async def _dimmed(page: Any) -> bool:
    return bool(await page.evaluate("document.getElementById('veil').classList.contains('dimmed')"))


async def _undimmed(page: Any) -> bool:
    return not await _dimmed(page)


async def _invitation_is(page: Any, text: str) -> bool:
    return (await attract(page))["invitation"] == text


async def _attract_gone(page: Any) -> bool:
    return not (await attract(page))["shown"]


def _said(session: Any, kind: str) -> list[dict[str, Any]]:
    return [event for way, event in session.commands if way == "channel" and event["type"] == kind]
