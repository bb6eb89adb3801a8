"""Tools run by the server on a GPT-Live call, end to end on loopback: the page stand-in (aiortc) joins
through ``/api/call`` and speaks; the fake's Live session delegates a function call to its Responses
backend; our server runs it against a real webhook over the session's sideband (``/attach``) and
answers with ``response.item.create`` + ``response.create``; the voice speaks the result."""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.desk import ARGUMENTS, HEADER, PARAMETERS, SECRET, Desk
from tests.helpers import wait_for
from tests.rtc_client import Client, join_through
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.live_agent import LiveAnswerer
from voicekiosk.fake.live_call import LiveCall
from voicekiosk.fake.voice import CLIPS, Script, load_clip
from voicekiosk.settings import DEFAULT_DELEGATION_MODEL
from voicekiosk.tools.prompt import ONE_MOMENT
from voicekiosk.tools.spec import ToolsConfig
from voicekiosk.web.appkeys import CALLS, CONTROL

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_leftover_tasks")]  # aiortc peers
LIVE = {"engine": "live", "model": "gpt-live-1.1", "upstream_timeout": 5.0}
FAST = (0.05, 0.1, 0.2)  # sideband back-off
BOOKED = 'Here is what I found: {"booked":true,"ref":"T-15:00"}'
DECLARED = {"type": "function", "name": "book_tour", "description": "Book a guided tour for a visitor."}


@pytest.fixture
def live() -> LiveAnswerer:
    """The fake's Live side: the visitor's first turn asks for a tour, the second too."""
    return LiveAnswerer(script=Script(tool_calls={0: ("book_tour", ARGUMENTS), 1: ("book_tour", ARGUMENTS)}))


@pytest.fixture
def fake(fake: FakeOpenAI, live: LiveAnswerer) -> FakeOpenAI:
    fake.live, fake.live_rules = live, live.rules
    return fake


async def joined(make_client: Any, live: LiveAnswerer, page: Client, tools: ToolsConfig, **overrides: Any) -> Any:
    """Our app on Live with ``tools``, a page in a session, and its sideband open; (client, session)."""
    client = await make_client(tools=tools, sideband_backoff=FAST, **(LIVE | overrides))
    call: LiveCall = live.calls[await join_through(client, page, "session.started")]
    await wait_for(lambda: call.sidebands == 1, timeout=5, what="the sideband")
    return client, call


def speak(page: Client) -> None:
    """The visitor says one sentence (then silence): a user turn."""
    page.mic.play(load_clip(CLIPS / "hours.wav"))


def said(page: Client) -> str:
    """Everything the agent has said so far, from its transcript deltas."""
    return "".join(event["delta"] for event in page.of("session.output_transcript.delta"))


async def hear(page: Client, text: str, timeout: float = 20) -> None:
    await wait_for(lambda: text in said(page), timeout=timeout, what=f"the agent to say {text!r}")


def by_sideband(call: LiveCall) -> list[str]:
    return [event["type"] for source, event in call.commands if source == "sideband"]


async def test_a_live_call_s_tool_reaches_the_webhook_and_its_answer_is_spoken(
    make_client: Any,
    fake: FakeOpenAI,
    live: LiveAnswerer,
    page: Client,
    tools: ToolsConfig,
    desk: tuple[Desk, TestServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="voicekiosk")
    _, call = await joined(make_client, live, page, tools)
    [created] = fake.recorded("live_sessions")
    session = created.body["session"]
    backend = {"model": DEFAULT_DELEGATION_MODEL, "tools": [DECLARED | {"parameters": PARAMETERS}]}
    assert session["delegation"] == {"type": "responses", "responses": backend}
    assert "Backend tools: book_tour." in session["instructions"] and ONE_MOMENT in session["instructions"]

    speak(page)
    await hear(page, BOOKED)
    assert desk[0].received == [(ARGUMENTS, SECRET)]
    [function_call] = call.functions.function_calls
    assert function_call.arguments == json.dumps(ARGUMENTS) and function_call.answered
    assert by_sideband(call) == ["response.item.create", "response.create"]
    assert not call.functions.undeclared and not page.of("error")

    # The page sees the delegation (its channel gets every server event) but nothing of the webhook.
    assert page.of("session.delegation.created") and page.of("response.event")
    seen = json.dumps([event for _, event in page.events])
    for secret in (SECRET, HEADER, "DESK_TOKEN", str(desk[1].make_url("/")), "/api/tours"):
        assert secret not in seen and secret not in caplog.text
    assert fake.api_key not in caplog.text and "tool book_tour(" in caplog.text


@pytest.mark.parametrize("failure", ["status", "timeout"])
async def test_a_failing_webhook_is_said_and_the_live_call_goes_on(
    make_client: Any,
    live: LiveAnswerer,
    page: Client,
    tools: ToolsConfig,
    desk: tuple[Desk, TestServer],
    failure: str,
) -> None:
    live.script.tool_calls.pop(1)  # the second turn is an ordinary reply
    if failure == "status":
        desk[0].status = 500
    else:
        desk[0].delay = 2.0  # the tool's timeout is 0.5 s
    _, call = await joined(make_client, live, page, tools)
    speak(page)
    await wait_for(lambda: call.functions.function_calls[0].answered if call.functions.function_calls else None)
    error = json.loads(call.functions.function_calls[0].output or "")["error"]
    expected = "book_tour answered with an error (HTTP 500)." if failure == "status" else "book_tour took too long"
    assert error.startswith(expected) and len(error) < 100
    await hear(page, error)
    speak(page)  # the call goes on: the next turn is an ordinary reply
    await hear(page, "We open at nine in the morning.")


async def test_a_live_sideband_killed_mid_call_comes_back_and_runs_the_next_tool(
    make_client: Any, live: LiveAnswerer, page: Client, tools: ToolsConfig, desk: tuple[Desk, TestServer]
) -> None:
    client, call = await joined(make_client, live, page, tools)
    call.drop_sidebands()
    await wait_for(lambda: call.sidebands_opened == 2 and call.sidebands == 1, timeout=5, what="the sideband back")
    assert client.server.app[CONTROL].sidebands[call.call_id].opened == 2
    speak(page)
    await hear(page, BOOKED)
    assert len(desk[0].received) == 1


async def test_a_failed_backend_response_s_outputs_are_not_sent(
    make_client: Any,
    live: LiveAnswerer,
    page: Client,
    tools: ToolsConfig,
    desk: tuple[Desk, TestServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """§3.3: a ``response.failed`` discards its calls; an output for one would be refused."""
    client, call = await joined(make_client, live, page, tools)
    call.functions.fail_next = True
    speak(page)
    line = f"sideband of {call.call_id}: the response failed: its tool output(s) not sent"
    await wait_for(lambda: line in caplog.text, timeout=15, what="the dropped output")
    sideband = client.server.app[CONTROL].sidebands[call.call_id]
    await wait_for(lambda: desk[0].received and sideband.calls.running == 0, timeout=5, what="the run")
    assert by_sideband(call) == [] and not page.of("error")


async def test_overlapping_delegations_are_answered_together_even_when_one_fails(
    make_client: Any, live: LiveAnswerer, page: Client, tools: ToolsConfig, desk: tuple[Desk, TestServer]
) -> None:
    """§3.3 step 4: one ``response.create`` after ALL pending outputs, across delegations. The first
    delegation's response ends while the second's is still in progress; the second then fails (its
    call discarded): the first's output goes, with one ``response.create``, and is spoken."""
    client, call = await joined(make_client, live, page, tools)
    sideband = client.server.app[CONTROL].sidebands[call.call_id]
    call.functions.hold = {0, 1}
    for turn in (1, 2):
        speak(page)
        await wait_for(lambda n=turn: len(call.functions.function_calls) == n, timeout=15, what=f"call {turn}")
    await wait_for(lambda: len(desk[0].received) == 2 and sideband.calls.running == 0, timeout=5, what="both runs")
    call.functions.release(0)
    await wait_for(lambda: sideband.calls.held == 1, timeout=5, what="the first output held")
    assert by_sideband(call) == []  # the second delegation is still in progress
    call.functions.release(1, "failed")
    await hear(page, BOOKED)
    first, second = call.functions.function_calls
    assert first.answered and not second.answered and second.output is None
    assert by_sideband(call) == ["response.item.create", "response.create"]
    assert ("out", "error") not in [(way, kind) for _, way, kind in call.events]  # nothing refused


@pytest.mark.parametrize("missed", [False, True])
async def test_a_live_sideband_dropped_mid_tool_waits_for_the_delegation_s_end(
    make_client: Any, live: LiveAnswerer, page: Client, tools: ToolsConfig, desk: tuple[Desk, TestServer], missed: bool
) -> None:
    """A drop while a delegation is in progress and its tool runs: the output goes once the response
    is seen to end on the reopened sideband, or (its end missed while down) once the sideband has been
    back ``SETTLE`` s with nothing showing it going on."""
    client, call = await joined(make_client, live, page, tools)
    sideband = client.server.app[CONTROL].sidebands[call.call_id]
    call.functions.hold, desk[0].delay = {0}, 0.2
    speak(page)
    await wait_for(lambda: desk[0].received and sideband.calls.running == 1, timeout=15, what="the tool running")
    call.drop_sidebands()
    if missed:
        call.functions.release(0)  # while no sideband listens
    await wait_for(lambda: call.sidebands_opened == 2 and call.sidebands == 1, timeout=5, what="the sideband back")
    await wait_for(lambda: sideband.calls.running == 0, timeout=5, what="the tool done")
    assert by_sideband(call) == [] and sideband.calls.unsure
    if not missed:
        call.functions.release(0)
    await hear(page, BOOKED)
    assert by_sideband(call) == ["response.item.create", "response.create"] and len(desk[0].received) == 1


@pytest.mark.parametrize("how", ["hang-up", "orphan", "shutdown"])
async def test_the_end_of_a_live_call_closes_it_on_its_sideband_and_the_sideband(
    make_client: Any, fake: FakeOpenAI, live: LiveAnswerer, page: Client, tools: ToolsConfig, how: str
) -> None:
    client, call = await joined(make_client, live, page, tools, orphan_grace=0.5 if how == "orphan" else 20)
    control = client.server.app[CONTROL]
    if how == "hang-up":
        assert (await client.delete(f"/api/call/{call.call_id}")).status == 200
    elif how == "shutdown":
        await client.close()
    closed = "the session and its sideband closed"
    await wait_for(lambda: call.closed and call.sidebands == 0 and not control.sidebands, timeout=10, what=closed)
    assert call.closed_reason == "close_requested"
    # session.close went over the sideband the server kept open: no second attach.
    assert by_sideband(call) == ["session.close"] and len(fake.recorded("live_attach")) == 1
    if how != "shutdown":
        assert len(client.server.app[CALLS]) == 0


async def test_the_page_cannot_answer_a_tool_and_the_fake_checks_outputs_strictly(
    make_client: Any, fake: FakeOpenAI, live: LiveAnswerer, page: Client, tools: ToolsConfig, fake_server: TestServer
) -> None:
    """Without the server's sideband (refused), the call talks on; the page's channel may not send
    ``response.item.create`` or ``response.create``; a sideband's are checked field by field."""
    fake.add_fault("live_attach", status=403, code="forbidden", times=1)
    client = await make_client(tools=tools, sideband_backoff=FAST, **LIVE)
    call: LiveCall = live.calls[await join_through(client, page, "session.started")]
    speak(page)
    [delegated] = await wait_for(lambda: call.functions.function_calls, timeout=15, what="the function call")
    output = {"type": "function_call_output", "call_id": delegated.call_id, "output": '{"booked":true}'}
    page.send({"type": "response.item.create", "item": output})
    page.send({"type": "response.create"})
    await page.wait_for("error", n=2)
    assert {e["error"]["code"] for e in page.of("error")} == {"client_event_not_allowed"}
    assert delegated.output is None

    url = fake_server.make_url(f"/v1/live/sessions/{call.call_id}/attach")
    key = {"Authorization": f"Bearer {fake.api_key}"}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=key) as ws:
        for event in (
            {"type": "response.create"},
            {"type": "response.item.create", "item": output | {"status": "completed"}},
            {"type": "response.item.create", "item": output | {"call_id": "call_nope"}},
            {"type": "response.item.create", "item": {"type": "message", "role": "user", "content": []}},
        ):
            await ws.send_json(event)
        errors = []
        async for message in ws:
            event = json.loads(message.data)
            if event["type"] == "error":
                errors.append((event["error"]["code"], event["error"]["param"]))
            if len(errors) == 4:
                break
    assert errors == [
        ("function_call_outputs_required", "type"),
        ("unknown_parameter", "item.status"),
        ("invalid_value", "item.call_id"),
        ("invalid_value", "item.type"),
    ]
    assert delegated.output is None and not delegated.answered


async def test_the_server_counts_a_live_session_s_billed_seconds_from_its_sideband(
    make_client: Any, live: LiveAnswerer, page: Client, tools: ToolsConfig
) -> None:
    """OpenAI's own cumulative count, heard on the sideband: the server's view of the bill, which a
    page's reports then do not move."""
    live.usage_every = 0.3
    client, call = await joined(make_client, live, page, tools)
    record = client.server.app[CALLS].get(call.call_id)
    updates = await wait_for(lambda: page.of("session.usage.updated"), what="a usage update")
    first = updates[0]["usage"]["seconds"]
    await wait_for(lambda: (record.billed_seconds or 0) >= first, timeout=5, what="the server's count")
    assert record.counted_here
