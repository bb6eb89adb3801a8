"""The fake OpenAI Realtime peer (``voicekiosk.fake.agent``), driven by a Python aiortc client on loopback."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.audio import speech_spans
from tests.helpers import never, wait_for
from tests.rtc_client import LOUD, Client
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.server import FakeOpenAI
from voicekiosk.fake.transport import strip_candidates
from voicekiosk.fake.voice import Script, Vad

pytestmark = pytest.mark.usefixtures("no_leftover_tasks")
SESSION = {"type": "realtime", "model": "gpt-realtime", "audio": {"output": {"voice": "marin"}}}


@pytest.fixture
async def agent() -> AsyncIterator[AgentAnswerer]:
    answerer = AgentAnswerer(loopback_only=True)
    yield answerer
    await answerer.close()
    assert all(call.closed for call in answerer.calls.values())
    assert all(not call._tasks for call in answerer.calls.values())


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    """Connects ``Client``s straight to ``AgentAnswerer.answer`` and closes them afterwards."""
    clients: list[Client] = []

    async def connect_to(agent: AgentAnswerer, call_id: str = "rtc_test", mic: Path | None = None) -> Client:
        peer = Client(mic)
        clients.append(peer)
        await peer.connect(lambda offer: agent.answer(call_id, offer, SESSION))
        await peer.wait_for("session.created")
        return peer

    yield connect_to
    for peer in clients:
        await peer.close()


@pytest.mark.slow  # aiortc peers
async def test_conversation_with_barge_in(agent: AgentAnswerer, connect: Any, mic_wav: Path) -> None:
    """The fixture's two utterances: reply 1 is interrupted by the second, reply 2 plays out."""
    [(start1, end1), (start2, end2)] = speech_spans(mic_wav)  # ~1.5-4.3 s and ~5.4-7.1 s
    assert abs(start1 - 1.5) < 0.1 and 2.4 < end1 - start1 < 3.2 and 1.2 < end2 - start2 < 2.0
    peer: Client = await connect(agent, mic=mic_wav)
    call = agent.calls["rtc_test"]
    created = peer.of("session.created")[0]["session"]
    assert created["model"] == "gpt-realtime" and created["audio"]["output"]["voice"] == "marin"
    assert created["expires_at"] > time.time() + 3000

    first = await peer.wait_for("input_audio_buffer.speech_started", timeout=4)
    assert 1300 <= first["audio_start_ms"] <= 1800
    stopped = await peer.wait_for("input_audio_buffer.speech_stopped", timeout=5)
    assert stopped["item_id"] == first["item_id"] and 4100 <= stopped["audio_end_ms"] <= 4600
    heard = await peer.wait_for("conversation.item.input_audio_transcription.completed")
    assert heard["item_id"] == first["item_id"] and re.fullmatch(r"\(2\.\d s of speech\)", heard["transcript"])
    await peer.wait_for("output_audio_buffer.started")

    # Barge-in: the second utterance starts ~0.5 s into the 3.7 s welcome.
    await peer.wait_for("input_audio_buffer.speech_started", 2, timeout=4)
    cut = (await peer.wait_for("response.done"))["response"]
    assert cut["status"] == "cancelled" and cut["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert cut["usage"]["output_token_details"]["audio_tokens"] < 3.7 * 20
    kinds = ["output_audio_buffer.cleared", "response.output_audio_transcript.done", "response.done"]
    order = [peer.index("input_audio_buffer.speech_started", 2), *(peer.index(k) for k in kinds)]
    assert order == sorted(order)
    partial = peer.of("response.output_audio_transcript.done")[0]["transcript"]
    welcome = agent.script.replies[0][0]
    assert partial and welcome.startswith(partial) and len(partial) < len(welcome)
    assert "".join(d["delta"] for d in peer.of("response.output_audio_transcript.delta")).strip() == partial

    # Agent side: the next frame after speech_started was silence.
    [barge_in] = call.barge_ins
    sent = next(
        t
        for t, way, kind in call.events
        if way == "out" and kind == "input_audio_buffer.speech_started" and t >= barge_in
    )
    await wait_for(lambda: call.voice.silenced, timeout=2, what="the agent's audio cut")
    [(cut_at, silent)] = call.voice.silenced  # (audio cut, first silent frame out)
    assert cut_at <= barge_in <= sent
    assert silent - sent < 0.1, f"agent audio went on {1000 * (silent - sent):.0f} ms after speech_started"
    # Client side: speech was received before, and stopped arriving soon after.
    started_at = peer.at("output_audio_buffer.started")
    barged_at = peer.at("input_audio_buffer.speech_started", 2)
    assert peer.loud_frames(started_at, barged_at) >= 10
    last_loud = max(t for t, rms in peer.audio if rms > LOUD and t < barged_at + 1.0)
    assert last_loud - barged_at < 0.15, f"received audio stayed loud {1000 * (last_loud - barged_at):.0f} ms"

    # Second turn: reply 2 plays to the end.
    done = (await peer.wait_for("response.done", 2, timeout=6))["response"]
    assert done["status"] == "completed" and done["status_details"] is None
    spent = done["usage"]
    assert spent["total_tokens"] == spent["input_tokens"] + spent["output_tokens"] > 0
    assert set(spent["input_token_details"]) >= {"text_tokens", "audio_tokens", "cached_tokens"}
    assert set(spent["output_token_details"]) == {"text_tokens", "audio_tokens"}
    assert done["output"][0]["content"][0]["transcript"] == agent.script.replies[1][0]
    await peer.wait_for("output_audio_buffer.stopped", timeout=2)
    deltas = [(t, e) for t, e in peer.events if e.get("response_id") == done["id"] and e["type"].endswith("delta")]
    assert "".join(e["delta"] for _, e in deltas) == agent.script.replies[1][0]
    assert deltas[-1][0] - deltas[0][0] > 0.8  # spread over the 1.5 s clip, word by word
    assert peer.loud_frames(peer.at("output_audio_buffer.started", 2), peer.at("response.done", 2)) >= 40

    kinds = [e["type"] for _, e in peer.events]
    assert kinds.index("response.created") < kinds.index("response.output_item.added")
    assert kinds.index("response.content_part.added") < kinds.index("output_audio_buffer.started")
    assert kinds[-1] == "output_audio_buffer.stopped"
    assert len({e["event_id"] for _, e in peer.events}) == len(peer.events)
    assert {kind for _, way, kind in call.events if way == "out"} == set(kinds)


@pytest.mark.slow  # aiortc peers
async def test_through_fake_openai(aiohttp_server: Any) -> None:
    """Multipart POST /v1/realtime/calls, an offer with no candidates, client events, then /_fake/drop."""
    answerer = AgentAnswerer(loopback_only=True, script=Script(user_transcripts=["Hi"]))
    fake = FakeOpenAI(answerer=answerer)
    server = await aiohttp_server(fake.app())
    peer = Client()
    try:
        async with aiohttp.ClientSession(str(server.make_url("/"))) as http:

            async def post(offer: str) -> str:
                # A stray LAN candidate next to none of our own: netguard strips it, prflx connects.
                offer += "a=candidate:9 1 udp 2122260223 192.0.2.1 50000 typ host\r\n"
                form = aiohttp.FormData({"sdp": offer, "session": json.dumps(SESSION)}, default_to_multipart=True)
                headers = {"Authorization": f"Bearer {fake.api_key}"}
                async with http.post("/v1/realtime/calls", data=form, headers=headers) as response:
                    assert response.status == 201, await response.text()
                    peer.call_id = response.headers["Location"].rsplit("/", 1)[1]
                    return await response.text()

            await peer.connect(post, no_candidates=True)
            assert answerer.netguard_dropped == 1
            await peer.wait_for("session.created")

            peer.send(
                {
                    "type": "session.update",
                    "session": {"audio": {"input": {"turn_detection": {"silence_duration_ms": 700}}}},
                }
            )
            turn = (await peer.wait_for("session.updated"))["session"]["audio"]["input"]["turn_detection"]
            assert turn["silence_duration_ms"] == 700 and turn["type"] == "server_vad"
            assert answerer.calls[peer.call_id].vad.silence_ms == 700
            peer.send({"type": "response.cancel", "event_id": "evt_1"})
            peer.send("{not json")
            peer.send({"type": "response.dance"})
            peer.send({"type": "input_audio_buffer.clear"})
            await peer.wait_for("input_audio_buffer.cleared")
            errors = [e["error"] for e in peer.of("error")]
            assert [e["code"] for e in errors] == ["response_cancel_not_active", "invalid_event", "invalid_event"]
            assert errors[0]["event_id"] == "evt_1" and errors[2]["param"] == "type"

            peer.send({"type": "response.create"})
            await peer.wait_for("output_audio_buffer.started")
            peer.send({"type": "response.create"})
            assert (await peer.wait_for("error", 4))["error"]["code"] == "conversation_already_has_active_response"
            await wait_for(lambda: peer.heard_since("output_audio_buffer.started", 5), timeout=4, what="the reply")
            peer.send({"type": "response.cancel"})
            peer.send({"type": "output_audio_buffer.clear"})
            await peer.wait_for("output_audio_buffer.cleared")
            done = peer.of("response.done")[0]["response"]
            assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
            assert peer.loud_frames(peer.at("output_audio_buffer.started"), peer.at("response.done")) >= 5

            async with http.post("/_fake/drop", json={"mode": "close"}) as response:
                assert response.status == 200 and (await response.json())["call_id"] == peer.call_id
            await asyncio.wait_for(peer.channel_closed.wait(), 5)
            async with http.post("/_fake/drop", json={"call_id": peer.call_id}) as response:
                assert response.status == 404
    finally:
        await peer.close()


@pytest.mark.slow  # aiortc peers
async def test_drop_with_error(agent: AgentAnswerer, connect: Any) -> None:
    peer: Client = await connect(agent)
    assert await agent.drop(mode="error") == "rtc_test"
    error = (await peer.wait_for("error"))["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "session_expired"
    assert error["message"] == "Your session hit the maximum duration of 60 minutes."
    await asyncio.wait_for(peer.channel_closed.wait(), 5)
    assert await agent.drop() is None


@pytest.mark.slow  # aiortc peers
async def test_drop_blackhole(agent: AgentAnswerer, connect: Any) -> None:
    peer: Client = await connect(agent)
    peer.send({"type": "response.create"})
    await peer.wait_for("output_audio_buffer.started")
    await wait_for(lambda: peer.heard_since("output_audio_buffer.started", 5), timeout=4, what="the reply")
    assert await agent.drop("rtc_test", mode="blackhole") == "rtc_test"
    settled = time.monotonic() + 0.2  # what was on the wire already may still arrive until then

    def arrived_later() -> list[float]:
        return [t for t, _ in peer.audio if t > settled] + [t for t, _ in peer.events if t > settled]

    # Time passing is the point: for a second after that, nothing at all arrives.
    await never(arrived_later, within=1.2, what="audio or events after the blackhole")
    assert peer.channel.readyState == "open"  # no goodbye: the client has to notice by itself
    await wait_for(lambda: agent.calls["rtc_test"].closed, timeout=2, what="the agent's side ended")


@pytest.mark.slow  # aiortc peers
async def test_hang_up(agent: AgentAnswerer, connect: Any) -> None:
    peer: Client = await connect(agent, "rtc_a")
    assert await agent.hang_up("rtc_a") is True
    await asyncio.wait_for(peer.channel_closed.wait(), 5)
    assert await agent.hang_up("rtc_a") is False
    assert await agent.hang_up("rtc_unknown") is False


def test_netguard_strips_non_loopback_candidates() -> None:
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=candidate:1 1 udp 2122260223 127.0.0.1 50001 typ host\r\n"
        "a=candidate:2 1 udp 2122260223 192.0.2.1 50002 typ host\r\n"
        "a=candidate:3 1 udp 2122260223 ::1 50003 typ host\r\n"
        "a=candidate:4 1 udp 2122260223 3f1c.local 50004 typ host\r\n"
        "a=end-of-candidates\r\n"
    )
    stripped, dropped = strip_candidates(sdp)
    assert dropped == 2
    assert "192.0.2.1" not in stripped and ".local" not in stripped
    assert "127.0.0.1 50001" in stripped and "::1 50003" in stripped and stripped.endswith("a=end-of-candidates\r\n")


def test_vad_edges() -> None:
    vad = Vad(threshold=0.004, silence_ms=500)
    feed = [(0.0, 10), (0.1, 2), (0.0, 1), (0.1, 3), (0.002, 24), (0.1, 2), (0.0, 25)]  # (rms, 20 ms frames)
    edges = [(vad.audio_ms, e) for rms, n in feed for _ in range(n) if (e := vad.feed(rms, 20))]
    # The 40 ms blip is too short; speech starts 60 ms into the second burst, and the 480 ms dip
    # (below the threshold) does not end it: only 500 ms of silence does.
    assert edges == [(320, "start"), (1340, "stop")]
    assert (vad.speech_start_ms, vad.speech_end_ms) == (260, 840)


@pytest.mark.slow  # aiortc peers
async def test_a_greeting_is_a_response_with_instructions_checked_recorded_and_spoken(
    agent: AgentAnswerer, connect: Any
) -> None:
    """What the page opens a visitor's call with: ``response.instructions``, nothing else in ``response``."""
    peer: Client = await connect(agent)
    peer.send({"type": "response.create", "response": {"instructions": "Greet them.", "greeting": "Hello"}})
    error = (await peer.wait_for("error"))["error"]
    assert error["code"] == "unknown_parameter" and error["param"] == "response.greeting"
    peer.send({"type": "response.create", "response": {"instructions": 7}})
    assert (await peer.wait_for("error", 2))["error"]["param"] == "response.instructions"
    assert not peer.of("response.created")  # neither was answered
    greeting = {"type": "response.create", "response": {"instructions": "Greet the visitor in one short sentence."}}
    peer.send(greeting)
    await peer.wait_for("output_audio_buffer.started")
    await wait_for(lambda: peer.heard_since("output_audio_buffer.started", 5), timeout=4, what="the greeting spoken")
    said = (await peer.wait_for("response.output_audio_transcript.done", timeout=8))["transcript"]
    assert said == Script().replies[0][0]
    assert agent.calls["rtc_test"].commands[-1] == ("channel", greeting)
