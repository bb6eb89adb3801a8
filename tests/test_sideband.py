"""Tools run by the server over a Realtime call's sideband, end to end on loopback: the page stand-in
(aiortc) joins through ``/api/call``, the fake agent calls a function, our server runs it against a
real webhook and answers over the sideband; failures, drops, hang-ups and secrets."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.desk import ARGUMENTS, HEADER, PARAMETERS, SECRET, Desk, book_tour
from tests.helpers import wait_for
from tests.rtc_client import Client, join_through
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.call import AgentCall
from voicekiosk.fake.checks import check_session
from voicekiosk.fake.voice import Script
from voicekiosk.notices import startup_notes
from voicekiosk.settings import Settings
from voicekiosk.tools.prompt import ONE_MOMENT
from voicekiosk.tools.spec import ToolsConfig
from voicekiosk.upstream import tool_calls
from voicekiosk.web.appkeys import CALLS, CONTROL

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_leftover_tasks")]  # aiortc peers
FAST = (0.05, 0.1, 0.2)  # sideband back-off


@pytest.fixture
def fake(fake: FakeOpenAI) -> FakeOpenAI:
    fake.answerer = AgentAnswerer(script=Script(tool_calls={0: ("book_tour", ARGUMENTS)}))
    return fake


async def join(client: Any, page: Client) -> str:
    return await join_through(client, page, "session.created")


async def joined(make_client: Any, fake: FakeOpenAI, page: Client, tools: ToolsConfig, **overrides: Any) -> Any:
    """Our app with ``tools``, a page in a call, and the call's sideband open; (client, fake call)."""
    client = await make_client(tools=tools, sideband_backoff=FAST, **overrides)
    call: AgentCall = fake.answerer.calls[await join(client, page)]  # type: ignore[attr-defined]
    await wait_for(lambda: call.sidebands == 1, timeout=5, what="the sideband")
    return client, call


def sideband_commands(call: AgentCall) -> list[str]:
    return [event["type"] for source, event in call.commands if source == "sideband"]


def declared_names(fake: FakeOpenAI) -> list[str]:
    """The tools the call's session declared, as the fake received it."""
    [created] = fake.recorded("calls")
    return [tool["name"] for tool in json.loads(created.body["session"])["tools"]]


async def test_the_agent_s_tool_call_reaches_the_webhook_and_its_answer_the_caption(
    make_client: Any,
    fake: FakeOpenAI,
    page: Client,
    tools: ToolsConfig,
    desk: tuple[Desk, TestServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="voicekiosk")
    client, call = await joined(make_client, fake, page, tools)
    declared = [
        {
            "type": "function",
            "name": "book_tour",
            "description": "Book a guided tour for a visitor.",
            "parameters": PARAMETERS,
        }
    ]
    [created] = fake.recorded("calls")
    sent = json.loads(created.body["session"])
    assert sent["tools"] == declared and sent["tool_choice"] == "auto"
    assert sent["instructions"].endswith(ONE_MOMENT)  # the agent says it is checking before a slow tool
    assert call.session["tools"] == declared  # what the fake checked strictly, and the page sees

    page.send({"type": "response.create"})
    done = await page.wait_for("response.output_audio_transcript.done", timeout=15)
    assert done["transcript"] == 'Here is what I found: {"booked":true,"ref":"T-15:00"}'
    assert desk[0].received == [(ARGUMENTS, SECRET)]
    [function_call] = call.function_calls
    assert function_call.arguments == json.dumps(ARGUMENTS) and function_call.answered
    by_sideband = [e["type"] for source, e in call.commands if source == "sideband"]
    assert by_sideband == ["conversation.item.create", "response.create"]
    assert not call.undeclared

    # Nothing of the webhook but its name and answer reaches the page, or a log line.
    seen = json.dumps([event for _, event in page.events])
    for secret in (SECRET, HEADER, "DESK_TOKEN", str(desk[1].make_url("/")), "/api/tours"):
        assert secret not in seen and secret not in caplog.text
    assert fake.api_key not in caplog.text
    assert "tool book_tour(" in caplog.text and "ok in" in caplog.text

    # The server counts what OpenAI reported on the sideband, as OpenAI reported it: a page's own
    # reports of the call's usage are then not needed, nor added.
    await page.wait_for("response.done", n=2, timeout=5)  # the function call's response, then the answer's
    spent = [e["response"]["usage"] for _, e in page.events if e["type"] == "response.done"]
    assert len(spent) == 2 and all(spent)
    record = client.server.app[CALLS].get(call.call_id)
    counted = (sum(u["input_tokens"] for u in spent), sum(u["output_tokens"] for u in spent))
    await wait_for(lambda: (record.input_tokens, record.output_tokens) == counted, what="the server's count")
    assert record.counted_here and f"usage {call.call_id}: " in caplog.text


@pytest.mark.parametrize("failure", ["status", "timeout"])
async def test_a_failing_webhook_gives_the_model_a_short_error_and_the_call_goes_on(
    make_client: Any, fake: FakeOpenAI, page: Client, tools: ToolsConfig, desk: tuple[Desk, TestServer], failure: str
) -> None:
    if failure == "status":
        desk[0].status = 500
    else:
        desk[0].delay = 2.0  # the tool's timeout is 0.5 s
    _, call = await joined(make_client, fake, page, tools)
    page.send({"type": "response.create"})
    done = await page.wait_for("response.output_audio_transcript.done", timeout=15)
    [function_call] = call.function_calls
    error = json.loads(function_call.output or "")["error"]
    expected = "book_tour answered with an error (HTTP 500)." if failure == "status" else "book_tour took too long"
    assert error.startswith(expected) and len(error) < 100
    assert error in done["transcript"]
    page.send({"type": "response.create"})  # the call goes on: the next turn is an ordinary reply
    after = await page.wait_for("response.output_audio_transcript.done", n=2, timeout=15)
    assert after["transcript"] == "We open at nine in the morning."


async def test_a_sideband_killed_mid_call_comes_back_and_runs_tools(
    make_client: Any, fake: FakeOpenAI, page: Client, tools: ToolsConfig, desk: tuple[Desk, TestServer]
) -> None:
    client, call = await joined(make_client, fake, page, tools)
    call.drop_sidebands()
    await wait_for(lambda: call.sidebands_opened == 2 and call.sidebands == 1, timeout=5, what="the sideband back")
    assert client.server.app[CONTROL].sidebands[call.call_id].opened == 2
    page.send({"type": "response.create"})
    done = await page.wait_for("response.output_audio_transcript.done", timeout=15)
    assert "T-15:00" in done["transcript"] and len(desk[0].received) == 1


@pytest.mark.parametrize("missed", [False, True])
async def test_a_sideband_dropped_mid_tool_waits_for_the_response_s_end(
    make_client: Any, fake: FakeOpenAI, page: Client, tools: ToolsConfig, desk: tuple[Desk, TestServer], missed: bool
) -> None:
    """A drop while the function call's response is in progress and its tool runs: nothing is sent
    while the response may be active (Realtime would refuse ``response.create``); the output goes
    once ``response.done`` is seen on the reopened sideband, or (missed while down) once the sideband
    has been back ``SETTLE`` s with nothing showing the response going on."""
    fake.answerer.script.hold_tool_responses = True  # type: ignore[attr-defined]
    desk[0].delay = 0.2
    client, call = await joined(make_client, fake, page, tools)
    sideband = client.server.app[CONTROL].sidebands[call.call_id]
    page.send({"type": "response.create"})
    await wait_for(lambda: desk[0].received and sideband.calls.running == 1, timeout=15, what="the tool running")
    call.drop_sidebands()
    if missed:
        call.release()  # while no sideband listens
    await wait_for(lambda: call.sidebands_opened == 2 and call.sidebands == 1, timeout=5, what="the sideband back")
    await wait_for(lambda: sideband.calls.running == 0, timeout=5, what="the tool done")
    assert sideband_commands(call) == [] and sideband.calls.unsure
    if not missed:
        call.release()
    done = await page.wait_for("response.output_audio_transcript.done", timeout=15)
    assert "T-15:00" in done["transcript"] and len(desk[0].received) == 1
    assert sideband_commands(call) == ["conversation.item.create", "response.create"] and not page.of("error")


@pytest.mark.parametrize("limit", ["running", "seen"])
async def test_calls_over_the_limits_get_an_error_output_at_once(
    make_client: Any,
    fake: FakeOpenAI,
    page: Client,
    desk: tuple[Desk, TestServer],
    monkeypatch: pytest.MonkeyPatch,
    limit: str,
) -> None:
    """At most ``MAX_RUNNING`` runs at once per call, at most ``MAX_SEEN`` calls per call: a call over
    either is answered at once with a short error, so the model never waits for it."""
    monkeypatch.setenv("DESK_TOKEN", SECRET)
    if limit == "seen":
        monkeypatch.setattr(tool_calls, "MAX_SEEN", 2)  # 10 000 in production
    fake.answerer.script.parallel_calls = tool_calls.MAX_RUNNING + 2  # type: ignore[attr-defined]
    desk[0].delay = 0.3
    _, call = await joined(make_client, fake, page, ToolsConfig(webhooks=(book_tour(desk[1], timeout=5.0),)))
    page.send({"type": "response.create"})
    await page.wait_for("response.output_audio_transcript.done", timeout=15)
    outputs = [json.loads(c.output or "{}") for c in call.function_calls]
    ran = 2 if limit == "seen" else tool_calls.MAX_RUNNING
    assert len(outputs) == 6 and outputs[:ran] == [{"booked": True, "ref": "T-15:00"}] * ran
    assert outputs[ran:] == [json.loads(tool_calls.OVERFLOW if limit == "seen" else tool_calls.BUSY)] * (6 - ran)
    assert len(desk[0].received) == ran and sideband_commands(call)[-1] == "response.create"


class Recorder:
    """A Caller that records what the page would be told."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.told: list[dict[str, Any]] = []

    def tell_page(self, event: Any) -> bool:
        self.told.append(dict(event))
        return True

    def end(self) -> bool:
        return True


@pytest.mark.parametrize("delay", [0.0, 0.6])
async def test_the_page_hears_of_a_tool_only_when_it_runs_a_while(
    make_client: Any,
    fake: FakeOpenAI,
    page: Client,
    desk: tuple[Desk, TestServer],
    monkeypatch: pytest.MonkeyPatch,
    delay: float,
) -> None:
    """An instant tool makes no "Working on it…" flash; one still running after 300 ms does, then done."""
    monkeypatch.setenv("DESK_TOKEN", SECRET)
    desk[0].delay = delay
    client = await make_client(tools=ToolsConfig(webhooks=(book_tour(desk[1], timeout=5.0),)), sideband_backoff=FAST)
    callers: dict[str, Recorder] = {}
    client.server.app[CONTROL].callers = lambda call_id: callers.setdefault(call_id, Recorder(call_id))
    call: AgentCall = fake.answerer.calls[await join(client, page)]  # type: ignore[attr-defined]
    await wait_for(lambda: call.sidebands == 1, timeout=5, what="the sideband")
    page.send({"type": "response.create"})
    done = await page.wait_for("response.output_audio_transcript.done", timeout=15)
    assert "T-15:00" in done["transcript"]
    states = [event["state"] for event in callers[call.call_id].told]
    assert states == ([] if delay == 0 else ["running", "done"])


async def test_a_sideband_that_keeps_dropping_at_once_is_given_up_after_the_back_off(
    make_client: Any, fake: FakeOpenAI, page: Client, tools: ToolsConfig, caplog: pytest.LogCaptureFixture
) -> None:
    _, call = await joined(make_client, fake, page, tools)
    for opened in range(1, len(FAST) + 2):
        await wait_for(lambda n=opened: call.sidebands_opened == n and call.sidebands == 1, timeout=5, what="open")
        call.drop_sidebands()
    line = f"sideband of {call.call_id} dropped again: the call goes on without tools"
    await wait_for(lambda: line in caplog.text, timeout=5, what="giving up")
    assert call.sidebands_opened == len(FAST) + 1 and not call.closed


async def test_a_sideband_refused_for_a_while_is_opened_with_back_off(
    make_client: Any, fake: FakeOpenAI, page: Client, tools: ToolsConfig
) -> None:
    fake.add_fault("sideband", status=500, times=2)
    _, call = await joined(make_client, fake, page, tools)
    assert fake.counts["sideband"] == 3 and call.sidebands_opened == 1


async def test_a_sideband_that_does_not_answer_is_given_up_in_bounded_time(
    make_client: Any, fake: FakeOpenAI, page: Client, tools: ToolsConfig, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_fault("sideband", kind="timeout")  # the handshake never gets an answer
    client = await make_client(tools=tools, sideband_backoff=(0.05,), upstream_timeout=0.3)
    session_id = await join(client, page)
    await wait_for(lambda: f"sideband of {session_id} not opened (0)" in caplog.text, timeout=5, what="giving up")
    assert fake.counts["sideband"] == 2


async def test_a_call_whose_sideband_cannot_be_opened_talks_without_tools(
    make_client: Any, fake: FakeOpenAI, page: Client, tools: ToolsConfig, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_fault("sideband", status=403, code="forbidden")
    client = await make_client(tools=tools, sideband_backoff=FAST)
    session_id = await join(client, page)
    line = await wait_for(
        lambda: next((r.getMessage() for r in caplog.records if "not opened (403)" in r.getMessage()), None),
        timeout=5,
        what="the log line",
    )
    assert line == f"sideband of {session_id} not opened (403): the call goes on without tools"
    assert fake.counts["sideband"] == 1  # a refusal no retry changes is not retried
    page.send({"type": "response.create"})  # the function call nobody answers
    await page.wait_for("response.function_call_arguments.done")
    page.send({"type": "response.create"})
    done = await page.wait_for("response.output_audio_transcript.done", timeout=15)
    assert done["transcript"] == "We open at nine in the morning."


async def test_the_sideband_needs_the_real_key_and_a_call(
    make_client: Any, fake: FakeOpenAI, page: Client, tools: ToolsConfig, fake_server: TestServer
) -> None:
    _, call = await joined(make_client, fake, page, tools)
    async with aiohttp.ClientSession() as session:
        for key, target in (("ek_123", call.call_id), (fake.api_key, "rtc_nosuchcall")):
            url = fake_server.make_url("/v1/realtime").with_query(call_id=target)
            async with session.get(url, headers={"Authorization": f"Bearer {key}"}) as response:
                assert response.status == 404
                assert (await response.json())["error"]["code"] == "call_id_not_found"


@pytest.mark.parametrize("how", ["hang-up", "orphan", "shutdown"])
async def test_the_end_of_a_call_closes_its_sideband(
    make_client: Any, fake: FakeOpenAI, page: Client, tools: ToolsConfig, how: str
) -> None:
    client, call = await joined(make_client, fake, page, tools, orphan_grace=0.5 if how == "orphan" else 20)
    control = client.server.app[CONTROL]
    if how == "hang-up":
        assert (await client.delete(f"/api/call/{call.call_id}")).status == 200
    elif how == "shutdown":
        await client.close()
    closed = "the call and its sideband closed"  # ours after the hang-up: Live's goes over it
    await wait_for(lambda: call.closed and call.sidebands == 0 and not control.sidebands, timeout=5, what=closed)
    assert call.sidebands_opened == 1 and fake.counts["sideband"] == 1  # not reopened
    if how != "shutdown":
        assert len(client.server.app[CALLS]) == 0


async def test_browser_sdp_declares_no_tools_and_says_so(
    make_client: Any, fake: FakeOpenAI, tools: ToolsConfig, settings: Settings
) -> None:
    client = await make_client(tools=tools, sdp="browser")
    assert client.server.app[CONTROL] is None
    assert (await client.post("/api/token")).status == 200
    [minted] = fake.recorded("client_secrets")
    assert "tools" not in minted.body["session"]
    notes = startup_notes(dataclasses.replace(settings, tools=tools, sdp="browser"), ["192.168.1.2"])
    assert any("--sdp browser gives the server no sideband" in note for note in notes)


async def test_the_fake_calls_only_declared_tools_and_takes_only_closed_events(
    make_client: Any, fake: FakeOpenAI, page: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """No tools configured: no tools declared, so the scripted call is not made and the agent speaks.
    The server's sideband is open all the same (for OpenAI's count of usage), and says so truly."""
    caplog.set_level(logging.INFO, logger="voicekiosk")
    client = await make_client()
    call: AgentCall = fake.answerer.calls[await join(client, page)]  # type: ignore[attr-defined]
    control = client.server.app[CONTROL]
    assert control is not None and not control.runner
    await wait_for(lambda: call.sidebands_opened == 1, timeout=5, what="the usage sideband")
    assert f"sideband of {call.call_id} open: the server hears its usage" in caplog.text
    assert "tools run on this server" not in caplog.text
    assert call.session["tools"] == []
    page.send({"type": "response.create"})
    done = await page.wait_for("response.output_audio_transcript.done", timeout=15)
    assert done["transcript"].startswith("Welcome") and call.undeclared == ["book_tour"]
    output = {"type": "function_call_output", "call_id": "call_nope", "output": "x"}
    page.send({"type": "conversation.item.create", "item": {**output, "extra": 1}})
    page.send({"type": "conversation.item.create", "item": output})
    page.send({"type": "response.create", "response": {"voice": "ash"}})
    await page.wait_for("error", n=3)
    assert [(e["error"]["code"], e["error"]["param"]) for e in page.of("error")] == [
        ("unknown_parameter", "item.extra"),
        ("invalid_value", "item.call_id"),
        ("unknown_parameter", "response.voice"),
    ]


def test_the_fake_refuses_a_session_s_tools_as_openai_would() -> None:
    base = {"type": "realtime", "model": "gpt-realtime"}
    tool = {"type": "function", "name": "book_tour", "description": "d", "parameters": PARAMETERS}
    assert check_session({**base, "tools": [tool], "tool_choice": "auto"}) is None
    assert check_session({**base, "tools": [{**tool, "url": "https://x"}]}) == "session.tools[0].url"
    array = {**tool, "parameters": {"type": "array"}}
    assert check_session({**base, "tools": [array]}) == "session.tools[0].parameters"
    assert check_session({**base, "tools": [{**tool, "type": "webhook"}]}) == "session.tools[0].type"
    assert check_session({**base, "tool_choice": "sometimes"}) == "session.tool_choice"


async def test_the_agent_looks_something_up_in_the_knowledge_folder(
    make_client: Any, fake: FakeOpenAI, page: Client, tmp_path: Any
) -> None:
    """The built-in ``lookup`` over a real folder and index, through the same sideband; an edited
    file is found at the next lookup."""
    folder = tmp_path / "desk-knowledge"
    folder.mkdir()
    (folder / "hours.md").write_text("# Opening hours\n\nThe museum opens at nine and closes at five.\n")
    fake.answerer = AgentAnswerer(
        script=Script(tool_calls={0: ("lookup", {"query": "opening hours"}), 1: ("lookup", {"query": "closes"})})
    )
    await joined(make_client, fake, page, ToolsConfig(knowledge=folder, builtins=frozenset({"lookup"})))
    assert declared_names(fake) == ["lookup"]

    page.send({"type": "response.create"})
    done = await page.wait_for("response.output_audio_transcript.done", timeout=15)
    assert "[hours.md — Opening hours]" in done["transcript"] and "closes at five" in done["transcript"]

    (folder / "hours.md").write_text("# Opening hours\n\nIn December the museum closes at four.\n")
    page.send({"type": "response.create"})
    second = await page.wait_for("response.output_audio_transcript.done", n=2, timeout=15)
    assert "closes at four" in second["transcript"] and "five" not in second["transcript"]


async def test_the_agent_calls_a_local_mcp_server_s_tool(make_client: Any, fake: FakeOpenAI, page: Client) -> None:
    """A real MCP server process (tests/mcp_desk.py) started with the app: its tool is declared to
    the session and run over the sideband like a webhook."""
    from tests.test_tools_mcp import stdio

    fake.answerer = AgentAnswerer(script=Script(tool_calls={0: ("light_on", {"room": "lobby"})}))
    _, call = await joined(make_client, fake, page, ToolsConfig(mcp=(stdio(allowed=("light_on",)),)))
    assert declared_names(fake) == ["light_on"]
    page.send({"type": "response.create"})
    done = await page.wait_for("response.output_audio_transcript.done", timeout=15)
    [function_call] = call.function_calls
    assert function_call.answered and "lobby" in (function_call.output or "")
    assert function_call.output in done["transcript"]
