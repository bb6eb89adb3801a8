"""``LiveEngine.hang_up`` against the fake's talking Live peer: a page stand-in (aiortc) joins the
session the engine made, and the engine ends it from the server over the sideband."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.helpers import wait_for, within
from tests.rtc_client import Client
from voicekiosk.errors import UpstreamError
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.live_agent import LiveAnswerer
from voicekiosk.settings import Settings
from voicekiosk.upstream.engine import Ended
from voicekiosk.upstream.live import LiveEngine

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_leftover_tasks")]  # aiortc peers


class SpoiledAnswers(LiveAnswerer):
    """Makes real sessions but answers the create with no SDP; the real answer goes to ``real``,
    for a page stand-in to join with (so the session can start)."""

    def __init__(self) -> None:
        super().__init__()
        self.real: asyncio.Queue[str] = asyncio.Queue()

    async def answer(self, call_id: str, offer: str, session: dict[str, Any]) -> str:
        self.real.put_nowait(await super().answer(call_id, offer, session))
        return "no SDP here"


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[LiveEngine]:
    engine = LiveEngine(dataclasses.replace(settings, model="gpt-live-1.1", upstream_timeout=5.0))
    yield engine
    await engine.aclose()


@pytest.fixture
async def page() -> AsyncIterator[Client]:
    peer = Client()
    yield peer
    await peer.close()


async def test_the_server_ends_a_session_over_the_sideband(engine: LiveEngine, fake: FakeOpenAI, page: Client) -> None:
    fake.live = live = LiveAnswerer()
    ids: list[str] = []

    async def post(offer: str) -> str:
        call = await engine.create_call(offer)
        ids.append(str(call.call_id))
        return call.answer_sdp

    await within(page.connect(post), 10, "the page to join")
    await page.wait_for("session.started")
    [session_id] = ids
    ended = await within(engine.hang_up(session_id), 8, "the hang-up")
    assert ended.ms > 0 and live.calls[session_id].closed_reason == "close_requested"
    closed = await page.wait_for("session.closed")
    assert closed["reason"] == "close_requested" and ended.billed_seconds == closed["usage"]["seconds"]
    [attach] = fake.recorded("live_attach")
    assert attach.body == session_id and not fake.recorded("live_hangup")
    await wait_for(lambda: live.calls[session_id].closed, timeout=5, what="the fake to close the session")
    assert await within(engine.hang_up(session_id), 5, "the second hang-up") == Ended()  # already gone: fine


async def test_an_unusable_answer_s_session_is_ended_once_it_starts(
    engine: LiveEngine, fake: FakeOpenAI, page: Client
) -> None:
    """The close comes before ``session.started`` (refused by the fake), then again once it starts."""
    fake.live = live = SpoiledAnswers()
    created: list[asyncio.Task[Any]] = []

    async def post(offer: str) -> str:
        created.append(asyncio.create_task(engine.create_call(offer)))
        return await within(live.real.get(), 5, "the session's real answer")

    await within(page.connect(post), 10, "the page to join")
    with pytest.raises(UpstreamError) as caught:
        await within(created[0], 10, "the create to fail")
    assert (caught.value.status, caught.value.code) == (502, "upstream_malformed")
    [session_id] = live.calls
    assert live.calls[session_id].closed_reason == "close_requested"
    assert (await page.wait_for("session.closed"))["reason"] == "close_requested"
    assert fake.counts["live_sessions"] == 1 and len(fake.recorded("live_attach")) == 1
