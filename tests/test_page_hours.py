"""Opening hours on a real kiosk page (real Chromium, real TLS, the fake's peer, loopback). The
server's clock is set to a venue's Monday a few seconds before it opens, or before it closes, and
ticks on from there: the page shows "closed" with the hours and makes no call (no microphone, no
offer), comes back by itself when it opens, and after closing lets the call under way finish, then
shows closed instead of pausing, and no voice wakes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser import ARTIFACTS, open_page, problem_title, wait_state
from tests.helpers import REAL_KEY, never, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.hours import parse_hours

pytestmark = pytest.mark.browser

WEEK = "Open Mon\N{EN DASH}Fri 9:00\N{EN DASH}17:00, Sat 10:00\N{EN DASH}14:00."  # as the page writes it
HOURS = parse_hours({"mon-fri": "09:00-17:00", "sat": "10:00-14:00", "timezone": "Europe/Paris"})
CALL_UP = ("listening", "user-speaking", "thinking", "agent-speaking")
# Counts the page's requests for the microphone (before its own scripts run).
MIC_COUNTER = """
window.__mics = 0;
const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (...args) => (window.__mics++, ask(...args));
"""


def monday(hour: int, minute: int, second: int):
    """A clock reading that Monday's time in Paris now, and ticking on from there."""
    offset = datetime(2026, 12, 7, hour, minute, second, tzinfo=ZoneInfo("Europe/Paris")) - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


@pytest.fixture
def answerer() -> AgentAnswerer:
    return AgentAnswerer(loopback_only=True, script=Script(user_transcripts=["Hello there."]))


@pytest.fixture
def fake(answerer: AgentAnswerer) -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY, answerer=answerer)


@pytest.fixture
def kiosk(serve_app: Any) -> Any:
    async def start(clock: Any, **overrides: Any) -> str:
        server = await serve_app(https=True, hours=HOURS, clock=clock, **overrides)
        return str(server.make_url("/?autostart"))

    return start


async def test_closed_it_shows_the_hours_makes_no_call_and_opens_by_itself(chromium, kiosk, answerer) -> None:
    url = await kiosk(monday(8, 59, 54))
    context = await chromium.new_context()
    await context.add_init_script(MIC_COUNTER)
    page, watch = await open_page(context, url)
    await wait_state(page, "closed")
    assert await page.text_content("#state-label") == "Closed"
    await wait_for(lambda: page.is_visible("#hours"), what="the hours shown")
    shown = await page.text_content("#hours")
    assert shown == f"{WEEK} Opens today at 9:00."
    assert await problem_title(page) == ""  # not an error
    assert not await page.is_visible("#start")  # nothing to start
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "closed.png")
    assert await page.evaluate("[window.__probe.pcs.length, window.__mics]") == [0, 0]  # no offer, no mic
    # 9:00 in Paris, by the server's clock: the page opens, and this kiosk starts by itself.
    await wait_state(page, *CALL_UP, timeout=15)
    assert len(answerer.calls) == 1
    assert not await page.is_visible("#hours")
    assert watch.errors == []
    await context.close()


async def test_at_closing_time_the_call_finishes_then_it_shows_closed_not_paused(chromium, kiosk, answerer) -> None:
    url = await kiosk(monday(16, 59, 55), idle_timeout=2)
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, *CALL_UP)
    # 17:00 passes while the visitor talks: the call goes on until nobody talks, then the page closes.
    await wait_state(page, "closed", timeout=30)
    assert "paused" not in await page.evaluate("window.__probe.states")
    [call] = answerer.calls.values()
    assert any(kind == "conversation.item.input_audio_transcription.completed" for _, _, kind in call.events)
    await wait_for(lambda: call.closed, what="the call hung up upstream")
    assert await page.text_content("#hours") == f"{WEEK} Opens tomorrow at 9:00."
    # The fake mic speaks again within 8 s (it loops): a closed kiosk does not wake.
    await never(lambda: page.evaluate("window.__probe.pcs.length > 1"), within=8, what="a call after closing")
    assert len(answerer.calls) == 1
    assert watch.errors == []
    await context.close()


async def test_a_stop_after_closing_time_shows_closed_not_the_invitation(chromium, kiosk, answerer) -> None:
    url = await kiosk(monday(16, 59, 57), idle_timeout=0)
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, *CALL_UP)
    # 17:00 passes in the call (the page asks the server just after the change): it goes on.
    await wait_for(lambda: page.evaluate("window.voicekiosk.hours.closed"), timeout=15, what="closing time")
    assert await page.get_attribute("main", "data-state") in CALL_UP
    await page.click("#start")  # the visitor taps Stop: no "Tap to talk" after closing time
    await wait_state(page, "closed")
    assert not await page.is_visible("#attract")
    await wait_for(lambda: [c.closed for c in answerer.calls.values()] == [True], what="the call hung up upstream")
    assert watch.errors == []
    await context.close()
