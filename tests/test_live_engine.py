"""``LiveEngine``'s REST side against the strict fake Live API on loopback: what it sends, what it
makes of each answer, and that a create is never sent twice."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import OFFER, REAL_KEY, within
from voicekiosk.errors import UpstreamError
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.answerers import CannedAnswerer
from voicekiosk.settings import DEFAULT_DELEGATION_MODEL, DEFAULT_INSTRUCTIONS, Settings
from voicekiosk.tools.prompt import GOODBYE, ONE_MOMENT, with_tools
from voicekiosk.tools.spec import ToolsConfig
from voicekiosk.upstream.engine import Ended
from voicekiosk.upstream.live import PAGE_EVENTS, LiveEngine

MakeEngine = Callable[..., LiveEngine]


@pytest.fixture
async def make_engine(settings: Settings) -> AsyncIterator[MakeEngine]:
    """``make_engine(voice="cedar", ...)``: a LiveEngine (model ``gpt-live-1.1``) at the fake;
    ``make_engine(declared, ...)``: with these function tools."""
    engines: list[LiveEngine] = []

    def make(declared: Sequence[dict[str, Any]] = (), **overrides: Any) -> LiveEngine:
        engine = LiveEngine(dataclasses.replace(settings, **{"model": "gpt-live-1.1", **overrides}), tools=declared)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.aclose()


async def refused(engine: LiveEngine, offer: str = OFFER) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await within(engine.create_call(offer), 5, "the create")
    return caught.value


async def test_the_session_from_settings_and_the_offer_byte_exact(make_engine: MakeEngine, fake: FakeOpenAI) -> None:
    offer = OFFER + "a=ice-options:trickle \r\n"  # a trailing space and the final CRLF: nothing trimmed
    call = await make_engine(voice="cedar", instructions="Be brief.").create_call(offer)
    [sent] = fake.recorded("live_sessions")
    session = {
        "model": "gpt-live-1.1",
        "instructions": "Be brief.",
        "audio": {"output": {"voice": "cedar"}},
        "client": {"data_channel": {"allowed_client_events": list(PAGE_EVENTS)}},
    }
    assert sent.body == {"session": session, "transport": {"type": "webrtc", "sdp": offer}}
    assert (sent.method, sent.path) == ("POST", "/v1/live/sessions")
    assert sent.headers["content-type"] == "application/json"
    assert call.call_id in fake.live.calls and call.call_id.startswith("live_")  # type: ignore[attr-defined]
    assert call.answer_sdp == CannedAnswerer.SDP and call.upstream_ms > 0


async def test_the_default_settings_make_a_session_the_strict_fake_takes(
    make_engine: MakeEngine, fake: FakeOpenAI
) -> None:
    """No audio.format, no delegation, nothing Realtime-only: an unknown field would be a 400."""
    call = await make_engine().create_call(OFFER)
    [sent] = fake.recorded("live_sessions")
    assert sent.body["session"] == {
        "model": "gpt-live-1.1",
        "instructions": DEFAULT_INSTRUCTIONS,
        "audio": {"output": {"voice": "marin"}},
        "client": {"data_channel": {"allowed_client_events": list(PAGE_EVENTS)}},
    }
    assert call.call_id


async def test_a_stripped_offer_is_sent_as_it_is_and_refused(make_engine: MakeEngine, fake: FakeOpenAI) -> None:
    error = await refused(make_engine(), OFFER.rstrip("\r\n"))
    assert (error.status, error.code, error.upstream_code) == (502, "upstream_rejected", "invalid_sdp")
    assert fake.recorded("live_sessions")[0].body["transport"]["sdp"] == OFFER.rstrip("\r\n")


STATUS_FAULTS = [
    # (fault, our status, our code)
    ({"status": 401, "code": "invalid_api_key"}, 502, "upstream_auth"),
    ({"status": 403, "code": "forbidden"}, 502, "upstream_forbidden"),
    ({"status": 500}, 502, "upstream_error"),
    ({"status": 503, "code": "overloaded"}, 502, "upstream_error"),
    ({"status": 429, "code": "rate_limit_exceeded", "retry_after": 7}, 429, "upstream_rate_limited"),
    ({"status": 429, "code": "insufficient_quota"}, 429, "upstream_rate_limited"),
    ({"kind": "garbled"}, 502, "upstream_malformed"),
    ({"kind": "malformed"}, 502, "upstream_malformed"),
    ({"kind": "close"}, 503, "upstream_unreachable"),
]


@pytest.mark.parametrize(("fault", "status", "code"), STATUS_FAULTS, ids=[str(f) for f, _, _ in STATUS_FAULTS])
async def test_failures_map_as_realtime_s_and_are_never_retried(
    make_engine: MakeEngine, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture, fault: Any, status: int, code: str
) -> None:
    fake.add_fault("live_sessions", **fault)
    error = await refused(make_engine())
    assert (error.status, error.code) == (status, code)
    assert fake.counts["live_sessions"] == 1 and not fake.recorded("live_attach")
    assert error.headers == ({"Retry-After": "7"} if "retry_after" in fault else {})
    assert REAL_KEY not in str(error) and REAL_KEY[-4:] not in error.message and REAL_KEY not in caplog.text


async def test_a_create_that_times_out_is_not_retried(make_engine: MakeEngine, fake: FakeOpenAI) -> None:
    fake.add_fault("live_sessions", kind="timeout")
    error = await refused(make_engine(upstream_timeout=0.5))
    assert (error.status, error.code) == (504, "upstream_timeout") and fake.counts["live_sessions"] == 1


async def test_refusals_of_the_session_keep_openai_s_code(make_engine: MakeEngine, fake: FakeOpenAI) -> None:
    error = await refused(make_engine(model="gpt-realtime-2.1"))
    assert (error.status, error.code, error.upstream_code) == (502, "upstream_rejected", "model_not_found")
    error = await refused(make_engine(api_key="sk-wrong-" + "w" * 40))
    assert (error.status, error.code, error.upstream_code) == (502, "upstream_auth", "invalid_api_key")
    assert fake.counts["live_sessions"] == 2 and fake.live.calls == set()  # type: ignore[attr-defined]


async def test_no_key_sends_nothing(make_engine: MakeEngine, fake: FakeOpenAI) -> None:
    engine = make_engine(api_key=None)
    assert (await refused(engine)).code == "no_api_key"
    with pytest.raises(UpstreamError) as caught:
        await engine.hang_up("live_abc")
    assert caught.value.code == "no_api_key" and not fake.requests


async def test_an_oversized_answer_is_refused_and_its_session_ended(make_engine: MakeEngine, fake: FakeOpenAI) -> None:
    """The session was made before its answer was spoiled: the engine still finds its id, and ends it
    (the canned session has no sideband, so the attach finds nothing: ended is fine)."""
    fake.add_fault("live_sessions", kind="oversized")
    error = await refused(make_engine())
    assert (error.status, error.code) == (502, "upstream_malformed")
    [created] = fake.live.calls  # type: ignore[attr-defined]
    assert [r.body for r in fake.recorded("live_attach")] == [created]


async def test_hang_up_of_a_session_openai_does_not_know(make_engine: MakeEngine, fake: FakeOpenAI) -> None:
    engine = make_engine()
    assert await within(engine.hang_up("live_gone"), 5, "the hang-up") == Ended()
    [attach] = fake.recorded("live_attach")
    assert attach.path == "/v1/live/sessions/live_gone/attach" and "authorization" not in attach.headers
    with pytest.raises(UpstreamError) as caught:
        await engine.hang_up("../realtime")
    assert caught.value.code == "unknown_call" and len(fake.recorded("live_attach")) == 1
    assert not fake.recorded("live_hangup")  # WebRTC sessions end with session.close, not the SIP hangup


@pytest.mark.parametrize(
    ("fault", "code"),
    [({"status": 401, "code": "invalid_api_key"}, "upstream_auth"), ({"status": 500}, "upstream_error")],
)
async def test_a_refused_attach_is_an_upstream_error(
    make_engine: MakeEngine, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture, fault: Any, code: str
) -> None:
    fake.add_fault("live_attach", **fault)
    with pytest.raises(UpstreamError) as caught:
        await within(make_engine().hang_up("live_abc"), 5, "the hang-up")
    assert caught.value.code == code and REAL_KEY not in str(caught.value) and REAL_KEY not in caplog.text


async def test_an_attach_that_never_answers_times_out(make_engine: MakeEngine, fake: FakeOpenAI) -> None:
    fake.add_fault("live_attach", kind="timeout")
    with pytest.raises(UpstreamError) as caught:
        await within(make_engine(upstream_timeout=0.5).hang_up("live_abc"), 5, "the hang-up")
    assert caught.value.code == "upstream_timeout"
    [rest] = fake.recorded("live_hangup")  # the last resort was tried, and refused (WebRTC)
    assert rest.body == "live_abc"


async def test_delegation_and_standby_from_settings_reach_the_strict_fake(
    make_engine: MakeEngine, fake: FakeOpenAI
) -> None:
    engine = make_engine(
        live_delegation_model="gpt-5.6-luna",
        live_delegation_instructions="Look up opening hours.",
        live_delegation_tools=("web_search",),
        live_standby=30,
    )
    call = await engine.create_call(OFFER)
    [sent] = fake.recorded("live_sessions")
    session = sent.body["session"]
    assert session["delegation"] == {
        "type": "responses",
        "responses": {
            "model": "gpt-5.6-luna",
            "instructions": "Look up opening hours.",
            "tools": [{"type": "web_search"}],
        },
    }
    assert (session["idle_timeout_s"], session["wake_policy"]) == (30, {"type": "speech"})
    assert call.call_id in fake.live.calls  # type: ignore[attr-defined]


async def test_tools_go_to_a_responses_backend_with_a_delegation_policy(
    make_engine: MakeEngine, fake: FakeOpenAI, tmp_path: Path
) -> None:
    """The server's function tools beside the hosted ones, on the default backend; the voice prompt
    says when to delegate and to say "one moment" first (§3.6). The strict fake takes it."""
    tool = {"type": "function", "name": "book_tour", "description": "Book a tour.", "parameters": {"type": "object"}}
    tools = ToolsConfig(knowledge=tmp_path, builtins=frozenset({"lookup"}))  # some tool runs here
    await make_engine([tool], tools=tools, live_delegation_tools=("web_search",)).create_call(OFFER)
    [sent] = fake.recorded("live_sessions")
    session = sent.body["session"]
    backend = {"model": DEFAULT_DELEGATION_MODEL, "tools": [{"type": "web_search"}, tool]}
    assert session["delegation"] == {"type": "responses", "responses": backend}
    policy = session["instructions"].removeprefix(DEFAULT_INSTRUCTIONS)
    assert policy.startswith("\n\nDelegation policy:\nBackend tools: book_tour.\n") and ONE_MOMENT in policy


def test_a_goodbye_is_delegated_when_the_backend_can_end_the_call() -> None:
    """Greetings and small talk stay with the voice model, but a goodbye goes to end_conversation."""
    policy = with_tools("Be kind.", ["lookup", "end_conversation"], delegated=True)
    assert GOODBYE in policy and policy.endswith(ONE_MOMENT)
    assert GOODBYE not in with_tools("Be kind.", ["lookup"], delegated=True)


async def test_standby_names_openai_refuses_fail_the_create_and_say_what_to_change(
    make_engine: MakeEngine, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """The standby field names rest on one third-party source (doc §5.2): if OpenAI calls them
    something else, every create fails, and the terminal names the setting to turn off."""
    fake.live_rules = dataclasses.replace(fake.live_rules, standby_fields=())
    error = await refused(make_engine(live_standby=30))
    assert (error.code, error.upstream_status, error.upstream_code) == ("upstream_rejected", 400, "unknown_parameter")
    assert "set live_standby = 0" in caplog.text
    assert len(fake.recorded("live_sessions")) == 1  # and not retried
