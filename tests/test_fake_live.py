"""The fake GPT-Live peer (``voicekiosk.fake.live_agent``), driven by a Python aiortc client on loopback."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import REAL_KEY, wait_for, within
from tests.rtc_client import LOUD, Client
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.live_agent import LiveAnswerer
from voicekiosk.fake.live_rules import LiveRules
from voicekiosk.fake.server import FakeOpenAI
from voicekiosk.fake.voice import Script

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_leftover_tasks")]  # aiortc peers
SESSION: dict[str, Any] = {"model": "gpt-live-1.1", "audio": {"output": {"voice": "cedar"}}}
AUTH = {"Authorization": f"Bearer {REAL_KEY}"}
Connect = Callable[..., Awaitable[Client]]


@pytest.fixture
async def live() -> AsyncIterator[LiveAnswerer]:
    answerer = LiveAnswerer(usage_every=0.5)
    yield answerer
    await answerer.close()
    assert all(call.closed and not call._tasks for call in answerer.calls.values())


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Connects ``Client``s straight to ``LiveAnswerer.answer`` (``session.started`` awaited unless told)."""
    clients: list[Client] = []

    async def connect_to(
        answerer: LiveAnswerer, session: dict[str, Any] = SESSION, mic: Path | None = None, started: bool = True
    ) -> Client:
        peer = Client(mic)
        clients.append(peer)
        await peer.connect(lambda offer: answerer.answer("live_test", offer, session))
        if started:
            await peer.wait_for("session.started")
        return peer

    yield connect_to
    for peer in clients:
        await peer.close()


def words(peer: Client, kind: str) -> str:
    return "".join(e["delta"] for e in peer.of(kind))


async def test_started_first_then_the_greeting(live: LiveAnswerer, connect: Connect) -> None:
    peer = await connect(live)
    assert peer.events[0][1]["type"] == "session.started"
    started = peer.of("session.started")[0]["session"]
    assert started["id"] == "live_test" and started["status"] == "active" and started["model"] == "gpt-live-1.1"
    assert started["audio"] == {"output": {"voice": "cedar"}} and started["delegation"] == {"type": "client"}
    assert 7000 < started["expires_at"] - time.time() <= 7200

    peer.send({"type": "session.commentary.append", "event_id": "say_1", "delegation_id": None, "content": "Greet."})
    ack = await peer.wait_for("session.commentary.appended")
    assert ack["client_event_id"] == "say_1" and ack["end_ms"] >= ack["start_ms"] >= 0
    await wait_for(lambda: peer.heard_since("session.commentary.appended", 10), timeout=4, what="the greeting heard")
    welcome = live.script.replies[0][0]
    await wait_for(lambda: words(peer, "session.output_transcript.delta") == welcome, timeout=6, what="the greeting")
    deltas = peer.of("session.output_transcript.delta")
    assert all(a["end_ms"] <= b["start_ms"] for a, b in itertools.pairwise(deltas))
    assert all(d["start_ms"] < d["end_ms"] for d in deltas) and deltas[-1]["end_ms"] - deltas[0]["start_ms"] > 2500
    assert not peer.of("session.input_transcript.delta") and not [e for _, e in peer.events if "done" in e["type"]]
    usage = [e["usage"]["seconds"] for e in peer.of("session.usage.updated")]
    assert len(usage) >= 3 and usage == sorted(usage) and usage[-1] > usage[0]  # cumulative, never per interval


async def test_commands_before_session_started_are_refused(connect: Connect) -> None:
    answerer = LiveAnswerer(start_delay=0.5)
    try:
        peer = await connect(answerer, started=False)
        close = {"type": "session.close", "event_id": "early"}
        peer.channel.on("open", lambda: peer.send(close))
        if peer.channel.readyState == "open":
            peer.send(close)
        error = (await peer.wait_for("error"))["error"]
        assert error["code"] == "session_not_started" and error["client_event_id"] == "early"
        await peer.wait_for("session.started")
        assert peer.index("error") < peer.index("session.started") and not peer.of("session.closed")
    finally:
        await answerer.close()


async def test_the_model_stops_when_the_visitor_keeps_talking(
    live: LiveAnswerer, connect: Connect, mic_wav: Path
) -> None:
    """The mic's first utterance (~1.5-4.3 s) gets the 3.7 s welcome, which the second (~5.4 s) talks over."""
    peer = await connect(live, mic=mic_wav)
    call = live.calls["live_test"]
    heard = await peer.wait_for("session.input_transcript.delta", timeout=6)
    assert 1300 <= heard["start_ms"] <= 1800
    await wait_for(lambda: words(peer, "session.input_transcript.delta").endswith("s of speech)"), timeout=2)
    assert 4000 <= peer.of("session.input_transcript.delta")[-1]["end_ms"] <= 4700
    await peer.wait_for("session.output_transcript.delta", timeout=3)
    await wait_for(lambda: call.barge_ins, timeout=4, what="the model's barge-in")
    [barged] = call.barge_ins
    partial, welcome = words(peer, "session.output_transcript.delta"), live.script.replies[0][0]
    assert partial and welcome.startswith(partial.strip()) and len(partial) < len(welcome)
    await wait_for(lambda: call.voice.silenced, timeout=2, what="the agent's audio cut")
    # Received audio goes quiet soon after the cut, then the reply to the second utterance plays out.
    loud = [t for t, rms in peer.audio if rms > LOUD and barged < t < barged + 1.0]
    assert not loud or max(loud) - barged < 0.3
    second = live.script.replies[1][0]
    await wait_for(lambda: words(peer, "session.output_transcript.delta").endswith(second), timeout=8, what="reply 2")
    assert len(call.barge_ins) == 1 and not peer.of("error")


async def test_errors_are_not_fatal(live: LiveAnswerer, connect: Connect) -> None:
    session = SESSION | {"client": {"data_channel": {"allowed_client_events": ["session.input_audio.mute"]}}}
    peer = await connect(live, session)
    info = await peer.wait_for("info")
    assert info["code"] == "data_channel_permissions" and "session.input_audio.mute" in info["message"]
    call = live.calls["live_test"]
    call.warn("content_filter", "The last reply was cut for moderation.")
    call.inform("notice", "Just so you know.")
    peer.send("{not json")
    for event in (
        {"type": "session.start", "event_id": "a"},
        {"type": "response.dance", "event_id": "b"},
        {"type": "session.close", "event_id": "c"},  # not in allowed_client_events
    ):
        peer.send(event)
    await peer.wait_for("error", 5)
    codes = [(e["error"]["code"], e["error"].get("client_event_id")) for e in peer.of("error")]
    assert codes == [
        ("content_filter", None),
        ("invalid_json", None),
        ("unsupported_event", "a"),
        ("unknown_parameter", "b"),
        ("client_event_not_allowed", "c"),
    ]
    assert all(set(e["error"]) >= {"type", "code", "message", "param"} for e in peer.of("error"))
    peer.send({"type": "session.input_audio.mute", "event_id": "m"})
    assert (await peer.wait_for("session.input_audio.muted"))["client_event_id"] == "m"
    assert peer.channel.readyState == "open" and not call.closed and not peer.of("session.closed")


async def test_a_fatal_error_leaves_the_ending_to_the_client(live: LiveAnswerer, connect: Connect) -> None:
    peer = await connect(live)
    call = live.calls["live_test"]
    with pytest.raises(ValueError, match="use fail"):
        call.warn("insufficient_quota", "Out of credit.")
    with pytest.raises(ValueError, match="use warn"):
        call.fail("content_filter", "Cut.")
    call.fail("billing_hard_limit_reached", "Billing hard limit reached.")
    error = (await peer.wait_for("error"))["error"]
    assert error["code"] == "billing_hard_limit_reached" and "client_event_id" not in error
    assert not call.closed and not peer.of("session.closed")
    peer.send({"type": "session.close", "event_id": "bye"})
    assert (await peer.wait_for("session.closed"))["reason"] == "close_requested"
    # What the session was sent, as sent and in order (the close above, refused or not).
    assert call.commands == [("channel", {"type": "session.close", "event_id": "bye"})]


async def test_commands_checked_strictly(live: LiveAnswerer, connect: Connect) -> None:
    peer = await connect(live)
    call = live.calls["live_test"]
    delegation = call.delegate()
    created = (await peer.wait_for("session.delegation.created"))["delegation"]
    assert created == {"id": delegation, "type": "delegation", "target": "client"}
    sent = [
        {"type": "session.thinking.append", "content": "Quiet context."},  # delegation_id left out
        {"type": "session.thinking.append", "content": "x", "delegation_id": "item_delegation_unknown"},
        {"type": "session.thinking.append", "content": "x" * 2004, "delegation_id": None},
        {"type": "session.instructions.append", "content": "x", "delegation_id": None, "role": "system"},
        {"type": "response.create"},
        {"type": "session.update", "session": {"delegation": {"type": "responses", "responses": {"model": "m"}}}},
        {"type": "session.update", "session": {"instructions": "New."}},
    ]
    for event in sent:
        peer.send(event)
    peer.send({"type": "session.thinking.append", "event_id": "ok", "content": "Done.", "delegation_id": delegation})
    ack = await peer.wait_for("session.thinking.appended")
    assert ack["client_event_id"] == "ok"
    assert [(e["error"]["code"], e["error"]["param"]) for e in peer.of("error")] == [
        ("missing_required_parameter", "delegation_id"),
        ("invalid_value", "delegation_id"),
        ("string_above_max_length", "content"),
        ("unknown_parameter", "role"),
        ("invalid_delegation_mode", "type"),
        ("immutable_field_update", "session.delegation.type"),
        ("unknown_parameter", "session.instructions"),
    ]
    assert not peer.of("session.output_transcript.delta")  # thinking is not spoken


async def test_session_close_says_why(live: LiveAnswerer, connect: Connect) -> None:
    peer = await connect(live)
    await peer.wait_for("session.usage.updated")
    peer.send({"type": "session.close", "event_id": "bye"})
    closed = await peer.wait_for("session.closed")
    assert closed["reason"] == "close_requested" and closed["session"]["status"] == "active"
    assert closed["usage"]["seconds"] >= peer.of("session.usage.updated")[-1]["usage"]["seconds"]
    await within(peer.channel_closed.wait(), 5, "the channel to close")
    await wait_for(lambda: live.calls["live_test"].closed, timeout=2, what="the session to end")


async def test_expiry(connect: Connect) -> None:
    answerer = LiveAnswerer(rules=LiveRules(expires_in=1.0))
    try:
        peer = await connect(answerer)
        assert peer.of("session.started")[0]["session"]["expires_at"] <= time.time() + 1
        closed = await peer.wait_for("session.closed", timeout=4)
        assert closed["reason"] == "expired" and 0.9 <= closed["usage"]["seconds"] <= 2
        await within(peer.channel_closed.wait(), 5, "the channel to close")
    finally:
        await answerer.close()


async def test_server_side_close(aiohttp_server: Any) -> None:
    """Through ``FakeOpenAI``: the create, then ``session.close`` on the sideband (which the page's
    ``allowed_client_events`` do not restrict), a REST hangup, and a peer that just goes away."""
    rules = LiveRules(webrtc_hangup=True)
    answerer = LiveAnswerer(rules=rules, script=Script(user_transcripts=["Hi"]))
    fake = FakeOpenAI(api_key=REAL_KEY, live=answerer, live_rules=rules)
    server = await aiohttp_server(fake.app())
    peers: list[Client] = []
    session = SESSION | {"client": {"data_channel": {"allowed_client_events": []}}}
    try:
        async with aiohttp.ClientSession(str(server.make_url("/"))) as http:

            async def call() -> tuple[Client, str]:
                peer, ids = Client(), []
                peers.append(peer)

                async def post(offer: str) -> str:
                    body = {"session": session, "transport": {"type": "webrtc", "sdp": offer}}
                    async with http.post("/v1/live/sessions", json=body, headers=AUTH) as response:
                        assert response.status == 201, await response.text()
                        answer = await response.json()
                        ids.append(answer["session"]["id"])
                        return str(answer["transport"]["sdp"])

                await peer.connect(post)
                await peer.wait_for("session.started")
                return peer, ids[0]

            peer, session_id = await call()
            attach = f"/v1/live/sessions/{session_id}/attach?graceful_close=true"
            async with http.ws_connect(attach, headers=AUTH) as ws:
                await ws.send_json({"type": "session.input_audio.mute", "event_id": "m"})
                seen = [json.loads((await within(ws.receive(), 5, "the sideband")).data)]
                assert seen[0]["type"] == "session.input_audio.muted"  # the page may send nothing at all
                await ws.send_json({"type": "session.close", "event_id": "server_bye"})
                async for message in ws:
                    seen.append(json.loads(message.data))
                assert seen[-1]["type"] == "session.closed" and seen[-1]["reason"] == "close_requested"
                assert ws.closed and ws.close_code == aiohttp.WSCloseCode.OK
            assert (await peer.wait_for("session.closed"))["reason"] == "close_requested"

            peer, session_id = await call()
            async with http.post(f"/v1/live/sessions/{session_id}/hangup", headers=AUTH) as response:
                assert response.status == 200
            assert (await peer.wait_for("session.closed"))["reason"] == "remote_hangup"

            peer, session_id = await call()
            async with http.ws_connect(f"/v1/live/sessions/{session_id}/attach", headers=AUTH) as ws:
                await peer.close()
                closed = json.loads((await within(ws.receive(), 10, "the sideband's session.closed")).data)
                assert closed["type"] == "session.closed" and closed["reason"] == "connection_lost"
                assert (await within(ws.receive(), 5, "the sideband to drop")).type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                )
            assert len(fake.recorded("live_attach")) == 2 and len(fake.recorded("live_sessions")) == 3
    finally:
        for peer in peers:
            await peer.close()


async def test_fake_say_makes_the_newest_session_talk(aiohttp_server: Any) -> None:
    """``POST /_fake/say {"engine": "live"}`` (benchmarks): the newest Live session talks for that long."""
    answerer = LiveAnswerer()
    server = await aiohttp_server(FakeOpenAI(api_key=REAL_KEY, answerer=AgentAnswerer(), live=answerer).app())
    peer = Client()
    try:
        async with aiohttp.ClientSession(str(server.make_url("/"))) as http:

            async def post(offer: str) -> str:
                body = {"session": SESSION, "transport": {"type": "webrtc", "sdp": offer}}
                async with http.post("/v1/live/sessions", json=body, headers=AUTH) as response:
                    answer = await response.json()
                    peer.call_id = answer["session"]["id"]
                    return str(answer["transport"]["sdp"])

            await peer.connect(post)
            await peer.wait_for("session.started")
            async with http.post("/_fake/say", json={"seconds": 1}) as response:
                assert response.status == 404  # Realtime's answerer: no call of its own
            assert peer.loud_frames(0, time.monotonic()) == 0
            async with http.post("/_fake/say", json={"seconds": 1, "engine": "live"}) as response:
                assert response.status == 200 and await response.json() == {"call_id": peer.call_id, "seconds": 1}
            await wait_for(lambda: peer.heard_since("session.started", 25), timeout=4, what="the session talking")
            assert not peer.of("session.output_transcript.delta")  # audio only, as Realtime's say
    finally:
        await peer.close()
