"""The fake's GPT-Live REST side (``POST /v1/live/sessions`` and below), checked as ``openai-live.md`` §1 gives it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.helpers import OFFER, REAL_KEY
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.live_agent import LiveAnswerer
from voicekiosk.fake.live_checks import check_command, check_create
from voicekiosk.fake.live_rules import LiveRules
from voicekiosk.fake.schema import Refusal, string

SESSION: dict[str, Any] = {
    "model": "gpt-live-1",
    "instructions": "Be brief.",
    "audio": {"output": {"voice": "marin"}},
    "delegation": {"type": "client"},
    "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
    "client": {"data_channel": {"allowed_client_events": ["session.close"], "allowed_server_events": "all"}},
    "store": False,
}
AUTH = {"Authorization": f"Bearer {REAL_KEY}"}
RESPONSES = {
    "type": "responses",
    "responses": {
        "model": "gpt-5.6-terra",
        "instructions": "Look things up.",
        "max_output_tokens": 256,
        "reasoning": {"effort": "low", "summary": "auto"},
        "tool_choice": {"type": "function", "name": "get_hours"},
        "tools": [{"type": "web_search"}, {"type": "function", "name": "get_hours", "parameters": {"type": "object"}}],
    },
}


def body(session: dict[str, Any] | None = None, sdp: str = OFFER, **transport: Any) -> dict[str, Any]:
    return {"session": session or SESSION, "transport": {"type": "webrtc", "sdp": sdp, **transport}}


def changed(path: str, value: Any) -> dict[str, Any]:
    """SESSION with the field at dotted ``path`` set to ``value`` (``...`` removes it)."""
    session = copy.deepcopy(SESSION)
    *parents, last = path.split(".")
    target = session
    for name in parents:
        target = target.setdefault(name, {})
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return session


async def create(client: Any, payload: Any, headers: dict[str, str] = AUTH, path: str = "/v1/live/sessions") -> Any:
    async with client.post(path, json=payload, headers=headers) as response:
        return response.status, await response.json(), response.headers


async def test_created(aiohttp_client: Any, fake: FakeOpenAI) -> None:
    client = await aiohttp_client(fake.app())
    status, answer, headers = await create(client, body())
    assert status == 201 and "Location" not in headers
    assert answer["session"]["id"].startswith("live_") and set(answer) == {"session", "transport"}
    assert answer["transport"]["type"] == "webrtc" and answer["transport"]["sdp"].startswith("v=0")
    [sent] = fake.recorded("live_sessions")
    assert sent.body == body() and sent.path == "/v1/live/sessions" and "authorization" not in sent.headers
    assert fake.live.calls == {answer["session"]["id"]}  # type: ignore[attr-defined]
    minimal = {"model": "gpt-live-1.1", "audio": {"output": {"voice": {"id": "voice_123"}}}, "delegation": None}
    standby = {"idle_timeout_s": 15, "wake_policy": {"type": "speech"}}
    for session in (minimal, minimal | standby, changed("delegation", RESPONSES)):
        assert (await create(client, body(session)))[0] == 201, session


REFUSALS = [
    # (session, HTTP status, error code, param)
    (changed("temperature", 0.7), 400, "unknown_parameter", "session.temperature"),
    (changed("audio.output.speed", 1.1), 400, "unknown_parameter", "session.audio.output.speed"),
    (changed("audio.input", {}), 400, "unknown_parameter", "session.audio.input"),
    (changed("client.data_channel.allowed", "all"), 400, "unknown_parameter", "session.client.data_channel.allowed"),
    (changed("model", ...), 400, "missing_required_parameter", "session.model"),
    (changed("model", "gpt-realtime"), 404, "model_not_found", "session.model"),
    (changed("model", "gpt-live-1-mini"), 404, "model_not_found", "session.model"),
    (changed("instructions", "x" * 4 * 16385), 400, "string_above_max_length", "session.instructions"),
    (changed("instructions", 7), 400, "invalid_type", "session.instructions"),
    (changed("audio.output.voice", "nova"), 403, "forbidden", "session.audio.output.voice"),
    (changed("audio.output.voice", "aster"), 403, "forbidden", "session.audio.output.voice"),
    (changed("audio.output.voice", {"id": "v" * 129}), 400, "string_above_max_length", "session.audio.output.voice.id"),
    (changed("audio.format", {"type": "audio/pcm"}), 400, "unsupported_parameter", "session.audio.format"),
    (changed("delegation", {"type": "server"}), 400, "invalid_value", "session.delegation.type"),
    (
        changed("delegation", {"type": "client", "responses": {}}),
        400,
        "unknown_parameter",
        "session.delegation.responses",
    ),
    (changed("delegation", {"type": "responses"}), 400, "missing_required_parameter", "session.delegation.responses"),
    (
        changed("delegation", {"type": "responses", "responses": {"model": "m", "temperature": 1}}),
        400,
        "unknown_parameter",
        "session.delegation.responses.temperature",
    ),
    (
        changed("delegation", {"type": "responses", "responses": {"model": "m", "tools": [{"type": "mcp"}]}}),
        400,
        "invalid_value",
        "session.delegation.responses.tools[0].type",
    ),
    (
        changed("delegation", {"type": "responses", "responses": {"model": "m", "max_output_tokens": 8}}),
        400,
        "integer_below_min_value",
        "session.delegation.responses.max_output_tokens",
    ),
    (
        changed("input", [{"type": "message", "role": "system", "content": [{"type": "input_text", "text": "x"}]}]),
        400,
        "invalid_value",
        "session.input[0].role",
    ),
    (
        changed("input", [{"type": "message", "role": "user", "content": []}]),
        400,
        "invalid_value",
        "session.input[0].content",
    ),
    (
        changed("input", [{"type": "message", "role": "user", "content": [{"type": "output_text", "text": "x"}]}]),
        400,
        "invalid_value",
        "session.input[0].content[0].type",
    ),
    (
        changed("input", [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]}] * 129),
        400,
        "array_above_max_length",
        "session.input",
    ),
    (
        changed(
            "input", [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x" * 33000}]}]
        ),
        400,
        "string_above_max_length",
        "session.input",
    ),
    (
        changed("client.data_channel.allowed_client_events", ["session.start"]),
        400,
        "invalid_value",
        "session.client.data_channel.allowed_client_events[0]",
    ),
    (
        changed("client.data_channel.allowed_server_events", [{"type": "error", "event": "x"}]),
        400,
        "unknown_parameter",
        "session.client.data_channel.allowed_server_events[0].event",
    ),
    (changed("store", "no"), 400, "invalid_type", "session.store"),
    (changed("idle_timeout_s", 0), 400, "integer_below_min_value", "session.idle_timeout_s"),
    (changed("wake_policy", {"type": "noise"}), 400, "invalid_value", "session.wake_policy.type"),
]


@pytest.mark.parametrize(("session", "status", "code", "param"), REFUSALS, ids=[r[3] + ":" + r[2] for r in REFUSALS])
async def test_refused(aiohttp_client: Any, fake: FakeOpenAI, session: Any, status: int, code: str, param: str) -> None:
    client = await aiohttp_client(fake.app())
    got, answer, _ = await create(client, body(session))
    assert (got, answer["error"]["code"], answer["error"]["param"]) == (status, code, param), answer
    assert set(answer["error"]) == {"type", "code", "message", "param"} and answer["error"]["message"]
    assert answer["error"]["type"] == "invalid_request_error"
    assert fake.live.calls == set()  # type: ignore[attr-defined]


async def test_envelope_and_transport(aiohttp_client: Any, fake: FakeOpenAI) -> None:
    client = await aiohttp_client(fake.app())
    cases = [
        ({"session": SESSION}, "missing_required_parameter", "transport"),
        ({**body(), "model": "gpt-live-1"}, "unknown_parameter", "model"),
        (body(type="sip") | {"transport": {"type": "sip", "sdp": OFFER}}, "invalid_value", "transport.type"),
        (body(ice="x"), "unknown_parameter", "transport.ice"),
        (body(sdp=OFFER.rstrip("\r\n")), "invalid_sdp", "transport.sdp"),
        (body(sdp="hello\r\n"), "invalid_sdp", "transport.sdp"),
    ]
    for payload, code, param in cases:
        status, answer, _ = await create(client, payload)
        assert (status, answer["error"]["code"], answer["error"]["param"]) == (400, code, param), payload
    stripped = (await create(client, body(sdp=OFFER.strip())))[1]["error"]
    assert stripped["message"] == "failed to unmarshal SDP: EOF"  # as integrators saw (openai-live.md §1.4)
    status, answer, _ = await create(client, body(), path="/v1/live/sessions?model=gpt-live-1")
    assert (status, answer["error"]["param"]) == (400, "model")
    async with client.post("/v1/live/sessions", data="{nope", headers=AUTH) as response:
        assert response.status == 400 and (await response.json())["error"]["code"] == "invalid_json"


async def test_the_offer_reaches_the_answerer_byte_exact(aiohttp_client: Any, fake: FakeOpenAI) -> None:
    seen: list[str] = []

    class Recording:
        async def answer(self, session_id: str, offer: str, session: dict[str, Any]) -> str:
            seen.append(offer)
            return "v=0\r\n"

        async def hang_up(self, session_id: str) -> bool:
            return False

        async def close(self) -> None:
            pass

    fake.live = Recording()
    client = await aiohttp_client(fake.app())
    offer = OFFER + "a=ice-options:trickle \r\n"  # a trailing space too: nothing is trimmed
    assert (await create(client, body(sdp=offer)))[0] == 201 and seen == [offer]


async def test_auth_is_the_real_key_only(aiohttp_client: Any, fake: FakeOpenAI) -> None:
    client = await aiohttp_client(fake.app())
    async with client.post("/v1/realtime/client_secrets", json={}, headers=AUTH) as response:
        ephemeral = (await response.json())["value"]
    for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": f"Bearer {ephemeral}"}):
        status, answer, _ = await create(client, body(), headers=headers)
        assert (status, answer["error"]["code"]) == (401, "invalid_api_key")
    assert len(fake.recorded("live_sessions")) == 3


async def test_faults(aiohttp_client: Any, fake: FakeOpenAI) -> None:
    client = await aiohttp_client(fake.app())
    fake.add_fault("live_sessions", status=429, code="rate_limit_exceeded", retry_after=7, times=1)
    status, answer, headers = await create(client, body())
    assert (status, answer["error"]["code"], headers["Retry-After"]) == (429, "rate_limit_exceeded", "7")
    assert (await create(client, body()))[0] == 201  # used up
    fake.add_fault("live_sessions", kind="garbled", times=1)
    async with client.post("/v1/live/sessions", json=body(), headers=AUTH) as response:
        assert response.status == 201 and await response.text() == "<html>oops"
    fake.add_fault("live_hangup", status=503, times=1)
    async with client.post("/v1/live/sessions/live_x/hangup", headers=AUTH) as response:
        assert response.status == 503


async def test_hangup_is_for_sip_unless_the_rules_say_otherwise(aiohttp_client: Any, fake: FakeOpenAI) -> None:
    client = await aiohttp_client(fake.app())
    session_id = (await create(client, body()))[1]["session"]["id"]
    async with client.post(f"/v1/live/sessions/{session_id}/hangup", headers=AUTH) as response:
        assert response.status == 400 and fake.live.calls == {session_id}  # type: ignore[attr-defined]
    fake.live_rules = LiveRules(webrtc_hangup=True)
    async with client.post(f"/v1/live/sessions/{session_id}/hangup", headers=AUTH) as response:
        assert response.status == 200 and fake.live.calls == set()  # type: ignore[attr-defined]
    async with client.post(f"/v1/live/sessions/{session_id}/hangup", headers=AUTH) as response:
        assert response.status == 404 and (await response.json())["error"]["code"] == "session_not_found"
    async with client.post(f"/v1/live/sessions/{session_id}/hangup") as response:
        assert response.status == 401
    assert [r.body for r in fake.recorded("live_hangup")] == [session_id] * 4


async def test_attach_needs_the_key_and_a_session(aiohttp_client: Any, fake: FakeOpenAI) -> None:
    client = await aiohttp_client(fake.app())
    async with client.get("/v1/live/sessions/live_x/attach") as response:
        assert response.status == 401
    async with client.get("/v1/live/sessions/live_x/attach", headers=AUTH) as response:
        assert response.status == 404 and (await response.json())["error"]["code"] == "session_not_found"


def test_standby_names_can_be_refused() -> None:
    """A wrong standby field name must fail: with the rule flipped the fake refuses the orq.ai names."""
    payload = body(changed("idle_timeout_s", 15))
    check_create(payload, LiveRules())
    with pytest.raises(Refusal) as refused:
        check_create(payload, LiveRules(standby_fields=()))
    assert refused.value.code == "unknown_parameter" and refused.value.param == "session.idle_timeout_s"


def test_a_session_update_must_name_its_delegation():
    """null selects client delegation at the start only; an update with it is refused, not stored."""
    update = {"type": "session.update", "event_id": "e1", "session": {"delegation": None}}
    with pytest.raises(Refusal) as refused:
        check_command(update, LiveRules(), delegation_type="client", delegations=set())
    assert refused.value.param == "session.delegation"


def test_a_string_too_short_says_so():
    with pytest.raises(Refusal) as refused:
        string(min_chars=1)("", "event_id")
    assert refused.value.code == "string_below_min_length" and "too short" in refused.value.message


async def test_say_reaches_the_engine_named(aiohttp_client: Any) -> None:
    """``/_fake/say`` drives Realtime's answerer unless told ``"engine": "live"``; nothing else is taken."""
    client = await aiohttp_client(FakeOpenAI(api_key=REAL_KEY, live=LiveAnswerer()).app())

    async def say(payload: Any) -> tuple[int, str]:
        async with client.post("/_fake/say", json=payload) as response:
            return response.status, (await response.json())["error"]["code"]

    assert await say({"seconds": 5, "engine": "live"}) == (404, "call_id_not_found")  # talks, but no session is open
    refused = (400, "invalid_value")
    assert await say({"seconds": 5}) == refused  # Realtime's answerer here is canned: it cannot talk
    for payload in (
        {"seconds": 5, "engine": "sip"},
        {"seconds": 5, "engine": ["live"]},
        {"seconds": 5, "engine": "live", "call_id": "live_x"},
        {"seconds": True, "engine": "live"},
        {"seconds": 601, "engine": "live"},
        ["live"],
    ):
        assert await say(payload) == refused, payload
