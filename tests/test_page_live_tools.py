"""A tool on the GPT-Live engine in a real Chromium, over real TLS, against the fake's Live peer: the
visitor's first sentence (tests/artifacts/mic.wav) makes the agent book a tour through a real
webhook, run by our server over the session's sideband; its answer reaches the caption."""

from __future__ import annotations

import pytest

from tests.browser import open_page, wait_state
from tests.desk import ARGUMENTS, HEADER, SECRET, book_tour, serve_desk
from tests.helpers import REAL_KEY, wait_for
from tests.test_page_live import CALL_UP, HEARD, lines
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.live_agent import LiveAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.tools.spec import ToolsConfig

pytestmark = pytest.mark.browser
BOOKED = 'Here is what I found: {"booked":true,"ref":"T-15:00"}'


@pytest.fixture
def live() -> LiveAnswerer:
    """The first sentence asks for a tour; the second one (over the answer) does not stop it."""
    script = Script(user_transcripts=HEARD, tool_calls={0: ("book_tour", ARGUMENTS)})
    return LiveAnswerer(script=script, barge_in_ms=60_000)


@pytest.fixture
def fake(live: LiveAnswerer) -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY, live=live)


async def test_a_live_tool_s_answer_reaches_the_caption(chromium, serve_app, aiohttp_server, live, monkeypatch):
    desk, desk_server = await serve_desk(aiohttp_server, HEADER)
    monkeypatch.setenv("DESK_TOKEN", SECRET)
    tools = ToolsConfig(webhooks=(book_tour(desk_server, timeout=2.0),))
    server = await serve_app(https=True, engine="live", model="gpt-live-1.1", tools=tools)
    context = await chromium.new_context()
    page, watch = await open_page(context, str(server.make_url("/?autostart")))
    await wait_state(page, *CALL_UP)
    [session] = live.calls.values()

    async def booked() -> bool:  # the caption may break the answer into lines where it paused
        return BOOKED in " ".join(await lines(page, "agent"))

    await wait_for(booked, timeout=30, what="the booking in the agent's caption")
    assert desk.received == [(ARGUMENTS, SECRET)]
    assert [event["type"] for way, event in session.commands if way == "sideband"] == [
        "response.item.create",
        "response.create",
    ]
    html = await page.content()
    for secret in (SECRET, HEADER, str(desk_server.make_url("/")), "/api/tours"):
        assert secret not in html
    assert watch.errors == []
    await context.close()
