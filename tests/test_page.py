"""The talking page in a real Chromium, over real TLS, against a fake OpenAI peer that speaks.

Everything is on loopback: the page, our server, the fake (aiortc) peer. The microphone plays
tests/artifacts/mic.wav: silence, "Hello there, I would like to visit the museum today.", a
1.1 s gap (the agent starts answering), "Sorry, what time do you open?" (barge-in), silence.
"""

from __future__ import annotations

import logging

import pytest

from tests.browser import (
    ARTIFACTS,
    audio_energy,
    ice_addresses,
    open_page,
    problem_title,
    silence_after,
    state_count,
    wait_state,
)
from tests.helpers import REAL_KEY, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.web.appkeys import CALLS

pytestmark = pytest.mark.browser

HEARD = ["Hello there, I would like to visit the museum today.", "Sorry, what time do you open?"]
PHONE = {"width": 390, "height": 844}
KIOSK = {"width": 1280, "height": 800}


@pytest.fixture
def answerer() -> AgentAnswerer:
    return AgentAnswerer(loopback_only=True, script=Script(user_transcripts=HEARD))


@pytest.fixture
def fake(answerer: AgentAnswerer) -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY, answerer=answerer)


@pytest.fixture
def serve_page(serve_app):
    """Serve our app over HTTPS (settings overridable) and give the page URL with ?autostart."""

    async def start(**overrides) -> str:
        server = await serve_app(https=True, **overrides)
        start.app = server.app  # for tests that look inside
        return str(server.make_url("/?autostart"))

    return start


async def test_the_agent_talks_and_both_captions_appear(chromium, serve_page, fake, caplog):
    caplog.set_level(logging.INFO, logger="voicekiosk")
    url = await serve_page()
    context = await chromium.new_context(viewport=PHONE)
    page, watch = await open_page(context, url)
    await wait_state(page, "listening", "user-speaking", "thinking")
    assert await page.evaluate("location.protocol") == "https:"

    await wait_for(lambda: _line(page, ".line.user"), timeout=20, what="your caption")
    assert await _line(page, ".line.user") == HEARD[0]
    before = await audio_energy(page)
    await wait_for(lambda: _line(page, ".line.agent"), timeout=20, what="the agent's caption")
    await wait_for(lambda: _more_energy(page, before), timeout=10, what="the agent's audio")
    await wait_for(lambda: _drawn(page, "viz-agent"), timeout=10, what="the agent's meter drawing")
    assert await _drawn(page, "viz-you") or await _ever_drawn(page, "viz-you")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "talking-phone.png")
    await page.set_viewport_size(KIOSK)
    await page.screenshot(path=ARTIFACTS / "talking-kiosk.png")

    assert await ice_addresses(page) <= {"127.0.0.1"}
    assert watch.foreign_urls() == []
    assert watch.errors == []
    # The terminal shows the conversation and what it cost (OpenAI's count, heard on the server's
    # sideband: it may come before the page reports the agent's words).
    await wait_for(lambda: "usage rtc_" in caplog.text, what="usage in the terminal")
    await wait_for(lambda: "agent: " in caplog.text, what="the agent's words in the terminal")
    assert f"you: {HEARD[0]}" in caplog.text
    await context.close()


async def test_it_hangs_up_when_nobody_talks_and_wakes_when_someone_does(chromium, serve_page, fake, caplog):
    caplog.set_level(logging.INFO, logger="voicekiosk")
    url = await serve_page(idle_timeout=2)
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    # The fake mic falls silent for 4.5 s after its second sentence: long enough to pause.
    await wait_state(page, "paused", timeout=25)
    await wait_for(lambda: len(fake.recorded("hangup")) == 1, what="the idle call hung up")
    assert "(nobody spoke)" in caplog.text  # the page said why: the call record's reason is idle
    assert "tap Start or just speak" in await page.text_content("#state-detail")
    # Then the mic speaks again, and the page connects by itself.
    await wait_state(page, "listening", "user-speaking", "thinking", "agent-speaking", timeout=25)
    assert await page.evaluate("window.__probe.pcs.length") == 2
    assert watch.errors == []
    await context.close()


async def test_barge_in_silences_the_agent_at_once_and_marks_its_caption(chromium, serve_page, fake, answerer):
    url = await serve_page()
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_for(lambda: page.query_selector(".line.agent.cut"), timeout=25, what="a cut-off agent caption")
    assert await page.is_visible(".line.agent.cut .cut-mark")
    probe = await page.evaluate("window.__probe")
    speaking = [e["t"] for e in probe["events"] if e["type"] == "output_audio_buffer.started"]
    barge = next(
        e["t"]
        for e in probe["events"]
        if e["type"] == "input_audio_buffer.speech_started" and speaking and e["t"] > speaking[0]
    )
    # Let a second of received-audio samples after the barge-in accumulate.
    await wait_for(lambda: page.evaluate(f"window.__probe.energy.at(-1).t > {barge + 1000}"), what="samples")
    probe = await page.evaluate("window.__probe")
    silent_after = silence_after(probe["energy"], barge)
    assert silent_after <= 300, f"agent audio still heard {silent_after:.0f} ms after speech_started"
    assert any(e["type"] == "output_audio_buffer.cleared" for e in probe["events"])
    # The page itself silences the agent's audio the moment you speak over it.
    assert any(m["muted"] and 0 <= m["t"] - barge < 50 for m in probe["muted"]), probe["muted"]
    assert watch.errors == []
    await context.close()


@pytest.mark.parametrize(
    ("mode", "noticed_within"),
    [
        ("close", 10),  # the peer hangs up: the data channel closes at once
        ("error", 15),  # the session's end (60 minutes) arrives as a fatal error event
        ("blackhole", 30),  # silence: `disconnected` after 5-10 s (ICE consent), then our grace
    ],
)
async def test_dropped_ended_and_silent_calls_are_reconnected(
    chromium, serve_page, fake, answerer, mode, noticed_within
):
    url = await serve_page()
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, "listening", "user-speaking", "thinking", "agent-speaking")
    before = await state_count(page)
    dropped = await answerer.drop(mode=mode)
    await wait_state(page, "reconnecting", timeout=noticed_within, since=before)
    await wait_state(page, "listening", "user-speaking", "thinking", "agent-speaking", timeout=15)
    assert await page.evaluate("window.__probe.pcs.length") == 2
    # The page told the server, which hung the old call up.
    await wait_for(lambda: dropped in [r.body for r in fake.recorded("hangup")], what="hang-up")
    assert watch.errors == []
    await context.close()


@pytest.mark.parametrize(
    ("sdp", "endpoint", "fault", "title"),
    [
        ("server", "calls", {"status": 500, "code": "server_error"}, "OpenAI had an error."),
        (
            "server",
            "calls",
            {"status": 429, "code": "rate_limit_exceeded", "retry_after": 1},
            "Busy — OpenAI asked us to slow down.",
        ),
        (
            "browser",
            "client_secrets",
            {"status": 401, "code": "invalid_api_key"},
            "OpenAI rejected the server's API key.",
        ),
        ("browser", "calls", {"status": 500, "code": "server_error"}, "OpenAI had an error."),
    ],
    ids=["sdp-5xx", "sdp-429", "mint-401", "browser-sdp-5xx"],
)
async def test_failures_are_explained_and_recover_when_they_clear(
    chromium, serve_page, fake, sdp, endpoint, fault, title
):
    url = await serve_page(sdp=sdp)
    fake.add_fault(endpoint, **fault)
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_for(lambda: problem_title(page), timeout=10, what="the problem shown")
    assert await problem_title(page) == title
    assert await page.is_visible("#retry")
    fake.clear_faults()
    await wait_state(page, "listening", "user-speaking", "thinking", "agent-speaking", timeout=20)
    assert not await problem_title(page)
    before = await audio_energy(page)
    await wait_for(lambda: _more_energy(page, before), timeout=20, what="the agent's audio after recovery")
    # Failed requests show as "Failed to load resource" in the console; nothing else may.
    assert [e for e in watch.errors if "Failed to load resource" not in e] == []
    assert watch.foreign_urls() == []
    await context.close()


async def test_retry_now_mid_attempt_leaves_one_call_not_two(chromium, serve_page, fake):
    url = await serve_page()
    fake.add_fault("calls", status=500)
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, "reconnecting")
    fake.clear_faults()
    fake.latency = 0.8  # every attempt is still upstream when the next tap comes
    for _ in range(3):
        # The next tap comes once this one's offer is on its way, well within the 0.8 s upstream.
        async with page.expect_request(lambda r: r.method == "POST" and "/api/call" in r.url, timeout=10_000):
            await page.click("#retry")
    await wait_state(page, "listening", "user-speaking", "thinking", "agent-speaking", timeout=20)
    # The superseded attempts' calls are hung up as soon as their answers arrive.
    answered = len(fake.recorded("calls")) - 1  # the first attempt failed at the fault
    assert answered >= 2
    await wait_for(lambda: len(fake.recorded("hangup")) == answered - 1, timeout=10, what="hang-ups")
    assert len(serve_page.app[CALLS]) == 1
    assert await page.evaluate("window.__probe.pcs.filter((pc) => pc.connectionState !== 'closed').length") == 1
    assert [e for e in watch.errors if "Failed to load resource" not in e] == []
    await context.close()


async def test_stop_hangs_up_and_releases_the_microphone(chromium, serve_page, fake):
    url = await serve_page()
    context = await chromium.new_context()
    page, _ = await open_page(context, url)
    await wait_state(page, "listening", "user-speaking", "thinking", "agent-speaking")
    await page.click("#mute")
    assert await page.get_attribute("#mute", "aria-pressed") == "true"
    assert await page.evaluate("window.voicekiosk.mic.getAudioTracks()[0].enabled") is False
    await page.click("#start")  # now labelled Stop
    await wait_state(page, "idle")
    await wait_for(lambda: len(fake.recorded("hangup")) == 1, what="the hang-up upstream")
    assert await page.evaluate("window.voicekiosk.mic") is None
    await context.close()


# -- helpers --------------------------------------------------------------------------------


async def _line(page, selector: str) -> str:
    return await page.evaluate(f"(document.querySelector('{selector}')?.firstChild?.nodeValue || '').trim()")


async def _more_energy(page, before: float) -> bool:
    return await audio_energy(page) > before + 0.01


async def _drawn(page, canvas_id: str) -> bool:
    return await page.evaluate(
        """(id) => {
          const c = document.getElementById(id);
          const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          for (let i = 3; i < data.length; i += 4) if (data[i]) return true;
          return false;
        }""",
        canvas_id,
    )


async def _ever_drawn(page, canvas_id: str) -> bool:
    try:
        await wait_for(lambda: _drawn(page, canvas_id), timeout=12, what=f"{canvas_id} drawing")
    except AssertionError:
        return False
    return True


async def test_a_browser_sdp_page_registers_its_call_with_its_mint(chromium, serve_page):
    url = await serve_page(sdp="browser")
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, "listening", "user-speaking", "thinking", "agent-speaking", timeout=20)
    calls = serve_page.app[CALLS]
    # The page posted its offer to OpenAI itself; its claim, with the mint's ticket, counts the call.
    await wait_for(lambda: len(calls) == 1 and next(iter(calls._calls.values())).owners == 1, what="the claim")
    # No sideband here: the usage is the page's report of each response, by its id.
    [record] = calls.calls()
    await wait_for(lambda: record.page_tokens.total > 0, timeout=25, what="the page's usage report")
    assert record.usage_by == "page" and all(rid.startswith("resp_") for rid in record.responses)
    assert watch.errors == []
    await context.close()
