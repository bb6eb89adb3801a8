"""The day's budget and the longest call on a real kiosk page (real Chromium, real TLS, the fake's
peer, loopback): the first call talks until OpenAI's count (on the server's sideband) spends the
tiny budget; the server tells the page and ends it, and the page shows "closed for today" (not an
error) and tries no more. A call at its longest is ended through its page too: it rests, it does
not call again. A call left running upstream across a server restart is not left outside the
budget: the new server hangs it up, and the page starts one it counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.audio import ARTIFACTS, make_mic_wav
from tests.browser import open_page, problem_title, state_count, wait_state
from tests.helpers import REAL_KEY, never, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.web.appkeys import CALLS, LEDGER

pytestmark = pytest.mark.browser

CALL_UP = ("listening", "user-speaking", "thinking", "agent-speaking")


@pytest.fixture
def answerer() -> AgentAnswerer:
    return AgentAnswerer(loopback_only=True, script=Script(user_transcripts=["Hello there."]))


@pytest.fixture
def fake(answerer: AgentAnswerer) -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY, answerer=answerer)


@pytest.fixture
def mic_wav(request: pytest.FixtureRequest) -> Path:
    """The usual fake mic; parametrized (``indirect``), a script of the test's own."""
    script = getattr(request, "param", None)
    return make_mic_wav(ARTIFACTS / "mic-once.wav", script) if script else make_mic_wav()


async def test_the_call_that_spends_the_budget_is_ended_and_the_page_shows_closed_for_today(
    chromium: Any, serve_app: Any, answerer: AgentAnswerer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await serve_app(https=True, budget_per_day=0.000_01, budget_timing={"every": 0.2, "grace": 1.0})
    context = await chromium.new_context()
    page, watch = await open_page(context, str(server.make_url("/?autostart")))
    await wait_state(page, *CALL_UP)
    # The visitor speaks, the agent answers: OpenAI's count passes the budget; the call is ended.
    await wait_state(page, "closed", timeout=30)
    assert await page.text_content("#state-label") == "Closed"
    assert await page.text_content("#state-detail") == "closed for today"
    assert await problem_title(page) == ""  # not an error
    [call] = answerer.calls.values()
    await wait_for(lambda: call.closed, what="the call hung up upstream")
    store = server.app[LEDGER].store
    await wait_for(lambda: store.query("SELECT reason FROM calls")[0]["reason"], what="the call's end written")
    [row] = store.query("SELECT reason, cost FROM calls")
    assert row["reason"] == "budget" and row["cost"] > 0.000_01
    # Refused (402), the page does not try again; its voice does not wake it.
    await never(lambda: len(answerer.calls) > 1, within=6, what="another call")
    assert server.app[LEDGER].today().spent
    # Told by the server, the page did not even ask again (no 402); its late hang-up of the call the
    # server ended found it gone (404): nothing else.
    assert [e for e in watch.errors if "404" not in e] == []
    assert "conversation_already_has_active_response" not in caplog.text  # the wrap-up waited its turn
    await context.close()


# One greeting-sized utterance, then a silence longer than the test: a paused page is not woken.
SPEAKS_ONCE = [(1.0, "Hello there.", 40.0)]


@pytest.mark.parametrize("mic_wav", [SPEAKS_ONCE], indirect=True, ids=["speaks-once"])
async def test_a_call_at_its_longest_ends_through_its_page_which_rests_and_calls_no_more(
    chromium: Any, serve_app: Any, answerer: AgentAnswerer
) -> None:
    server = await serve_app(https=True, max_call_minutes=0.1)  # 6 s: told to wrap up at 3 s
    context = await chromium.new_context()
    page, watch = await open_page(context, str(server.make_url("/?autostart")))
    await wait_state(page, *CALL_UP)
    since = await state_count(page)
    await wait_state(page, "paused", since=since, timeout=20)
    assert await page.text_content("#state-detail") == "goodbye — tap Start or just speak"
    [call] = answerer.calls.values()
    await wait_for(lambda: call.closed, what="the call hung up upstream")
    store = server.app[LEDGER].store
    await wait_for(lambda: store.query("SELECT reason FROM calls")[0]["reason"], what="the call's end written")
    assert [row["reason"] for row in store.query("SELECT reason FROM calls")] == ["limit"]
    await never(lambda: len(answerer.calls) > 1, within=5, what="another call")
    assert "reconnecting" not in await page.evaluate(f"window.__probe.states.slice({since})")
    assert await page.evaluate("window.__probe.states.at(-1)") == "paused"
    assert [e for e in watch.errors if "404" not in e] == []  # its late hang-up found the call gone
    await context.close()


async def test_a_call_left_running_across_a_restart_is_hung_up_and_the_page_starts_one_counted(
    chromium: Any, serve_app: Any, aiohttp_server: Any, https_settings: Any, fake: FakeOpenAI, answerer: AgentAnswerer
) -> None:
    """The first server's hang-up at shutdown is refused (as at a crash: the call runs on upstream,
    the page still talking on it); the next, on the same port, data directory and fake, does not know
    the call the page re-claims: it hangs it up, and the page starts a call the new server counts."""
    from tests.conftest import build_app

    first = await serve_app(https=True)
    context = await chromium.new_context()
    page, _ = await open_page(context, str(first.make_url("/?autostart")))
    await wait_state(page, *CALL_UP)
    [old] = answerer.calls.values()
    fake.add_fault("hangup", status=500, times=10)
    port = first.port
    await first.close()
    assert not old.closed  # left running upstream
    fake.clear_faults()

    second = await aiohttp_server(build_app(https_settings.settings, {}), ssl=https_settings.context, port=port)
    await wait_for(lambda: old.closed, timeout=20, what="the old call hung up by the new server")
    await wait_for(lambda: len(second.app[CALLS]) == 1, timeout=20, what="a new call, counted by the new server")
    [new] = second.app[CALLS].calls()
    assert new.call_id != old.call_id and len(answerer.calls) == 2
    await wait_state(page, *CALL_UP)
    await context.close()
