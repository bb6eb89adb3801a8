"""The day's budget on a real kiosk page (real Chromium, real TLS, the fake's peer, loopback): the
first call talks until OpenAI's count (on the server's sideband) spends the tiny budget; the server
ends it, refuses the page's next call, and the page shows "closed for today" (not an error), and
tries no more."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import open_page, problem_title, wait_state
from tests.helpers import REAL_KEY, never, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.web.appkeys import LEDGER

pytestmark = pytest.mark.browser

CALL_UP = ("listening", "user-speaking", "thinking", "agent-speaking")


@pytest.fixture
def answerer() -> AgentAnswerer:
    return AgentAnswerer(loopback_only=True, script=Script(user_transcripts=["Hello there."]))


@pytest.fixture
def fake(answerer: AgentAnswerer) -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY, answerer=answerer)


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
    # The page's hang-up of the call the server ended (404), and the refusal (402): nothing else.
    assert [e for e in watch.errors if "402" not in e and "404" not in e] == []
    assert "conversation_already_has_active_response" not in caplog.text  # the wrap-up waited its turn
    await context.close()
