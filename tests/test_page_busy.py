"""The page in a real Chromium when every line is taken (``--max-calls``): it says so, keeps
trying by itself, and gets in as soon as a line is free."""

from __future__ import annotations

import pytest

from tests.browser import open_page, problem_title, wait_state
from tests.helpers import REAL_KEY, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.web.appkeys import CALLS

pytestmark = pytest.mark.browser

UP = ("listening", "user-speaking", "thinking", "agent-speaking")


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY, answerer=AgentAnswerer(loopback_only=True))


async def test_a_second_page_is_told_busy_and_gets_in_when_the_first_hangs_up(chromium, serve_app, fake):
    server = await serve_app(https=True, max_calls=1)
    url = str(server.make_url("/?autostart"))
    first_context, second_context = await chromium.new_context(), await chromium.new_context()
    first, _ = await open_page(first_context, url)
    await wait_state(first, *UP, timeout=20)
    second, watch = await open_page(second_context, url)

    async def told_busy() -> bool:
        return await problem_title(second) == "Busy — every line is taken."

    await wait_for(told_busy, timeout=15, what="the second page told the line is busy")
    assert await second.text_content("#problem-help") == "Retrying by itself."
    assert await wait_state(second, "reconnecting") == "reconnecting"  # counting down to its next try
    assert len(server.app[CALLS]) == 1
    await first.click("#start")  # Stop: the first hangs up
    await wait_state(first, "idle")
    await wait_state(second, *UP, timeout=30)  # its back-off waits 5 s (Retry-After) or more
    assert await problem_title(second) == ""
    assert len(server.app[CALLS]) == 1 and fake.made["realtime"] == 2
    # 429s from our own API show as console errors in Chromium ("Failed to load resource").
    assert [e for e in watch.errors if "429" not in e] == []
    await first_context.close()
    await second_context.close()
