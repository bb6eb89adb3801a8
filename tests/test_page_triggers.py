"""Triggers from outside on a real kiosk page (real Chromium, real TLS, the fake's peers, loopback):
``/api/start`` wakes an idle page, ``/api/stop`` pauses a talking one (and the fake sees the
hang-up), ``/api/announce`` wakes a paused one and the agent is told the text (Realtime: a system
message with it, then a ``response.create``; Live: ``session.commentary.append``)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from tests.browser import open_page, state_count, wait_state
from tests.helpers import REAL_KEY, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.live_agent import LiveAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.web.appkeys import EVENTS

pytestmark = pytest.mark.browser

HEARD = ["Hello there, I would like to visit the museum today.", "Sorry, what time do you open?"]
CALL_UP = ("listening", "user-speaking", "thinking", "agent-speaking")
TEXT = "The museum closes in 15 minutes."


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
def kiosk(serve_app: Any, https_settings: Any) -> Any:
    """Serve our app over HTTPS; ``await kiosk(path, **settings)`` -> (page URL, trigger)."""

    async def start(path: str = "/?autostart", **overrides: Any) -> tuple[str, Any]:
        server = await serve_app(https=True, **overrides)
        trust = ssl.create_default_context(cafile=str(https_settings.settings.data_dir / "ca.pem"))
        hub = server.app[EVENTS]

        async def trigger(kind: str, body: dict[str, str] | None = None) -> dict[str, Any]:
            """POST /api/<kind> as an automation on this machine would, once a page can hear it."""
            await wait_for(lambda: hub.pages >= 1, timeout=15, what="the page's events socket")
            async with httpx.AsyncClient(verify=trust) as client:
                response = await client.post(str(server.make_url(f"/api/{kind}")), json=body)
            assert response.status_code == 202, response.text
            return dict(response.json())

        return str(server.make_url(path)), trigger

    return start


def told(commands: list[tuple[str, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    """What the page sent on its channel of type ``kind``."""
    return [event for way, event in commands if way == "channel" and event["type"] == kind]


async def test_start_wakes_an_idle_kiosk_and_stop_pauses_it(chromium, kiosk, fake, answerer) -> None:
    url, trigger = await kiosk("/")  # no autostart: the page waits for a tap
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, "idle")
    assert await trigger("start") == {"status": "sent", "pages": 1}
    await wait_state(page, *CALL_UP)
    assert len(answerer.calls) == 1
    await trigger("stop")
    await wait_state(page, "paused")
    await wait_for(lambda: len(fake.recorded("hangup")) == 1, what="the hang-up upstream")
    assert "tap Start or just speak" in await page.text_content("#state-detail")
    since = await state_count(page)
    await trigger("start")
    await wait_state(page, *CALL_UP, since=since)
    await wait_for(lambda: len(answerer.calls) == 2, what="the second call")
    assert watch.errors == []
    await context.close()


async def test_announce_wakes_a_paused_realtime_kiosk_and_the_agent_is_told(chromium, kiosk, answerer) -> None:
    url, trigger = await kiosk(idle_timeout=2)
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, "paused", timeout=25)  # the fake mic falls silent: the idle hang-up
    await trigger("announce", {"text": TEXT})
    await wait_state(page, *CALL_UP)

    def instructions() -> list[str]:
        """What the page told the agent in system messages (the announcement; a plain response follows)."""
        items = [e["item"] for c in answerer.calls.values() for e in told(c.commands, "conversation.item.create")]
        return [item["content"][0]["text"] for item in items if item.get("role") == "system"]

    await wait_for(instructions, what="the announcement on the data channel")
    [said] = instructions()
    assert f'"{TEXT}"' in said and said.startswith("Say this to the visitor now")
    assert watch.errors == []
    await context.close()


async def test_announce_wakes_a_paused_live_kiosk_as_commentary(chromium, kiosk, live) -> None:
    greeting = "Welcome the visitor to the museum in one short sentence."
    url, trigger = await kiosk(engine="live", model="gpt-live-1.1", greeting=greeting, idle_timeout=2)
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, "paused", timeout=25)
    await trigger("announce", {"text": TEXT})
    await wait_for(lambda: len(live.calls) >= 2, timeout=15, what="the woken session")
    session = list(live.calls.values())[-1]
    await wait_for(lambda: told(session.commands, "session.commentary.append"), what="the announcement")
    [said] = told(session.commands, "session.commentary.append")  # not greeted: the announcement is first
    assert said["delegation_id"] is None and f'"{TEXT}"' in said["content"]
    log = [(way, kind) for _, way, kind in session.events]
    assert log.index(("out", "session.started")) < log.index(("in", "session.commentary.append"))
    assert ("out", "error") not in log
    assert watch.errors == []
    await context.close()


async def test_an_announcement_mid_answer_waits_for_the_answer_to_end(chromium, kiosk, answerer) -> None:
    url, trigger = await kiosk()
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, "agent-speaking", timeout=25)
    [call] = answerer.calls.values()
    await trigger("announce", {"text": TEXT})
    await wait_for(lambda: told(call.commands, "response.create"), what="the announcement")
    log = [(way, kind) for _, way, kind in call.events]
    asked = log.index(("in", "response.create"))
    assert ("out", "response.done") in log[:asked]  # after the answer under way: not refused as a second one
    assert ("out", "error") not in log
    assert watch.errors == []
    await context.close()
