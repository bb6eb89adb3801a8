"""The server's news to a page (``EventHub.push`` over ``/api/events``) and each call's ``Caller``
(``web/caller.py``): only the page that holds the call hears it, every queue is bounded, and a call
the agent ended is hung up by the server when no page does it in time. Real app, real sockets."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import call_id, never, post_call, wait_for, within
from voicekiosk.fake import FakeOpenAI
from voicekiosk.tools.end_conversation import EndConversationTool
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.tools.show import ShowTool
from voicekiosk.web.appkeys import CALLS, EVENTS
from voicekiosk.web.caller import PageCallers
from voicekiosk.web.push import MAX_EVENT, MAX_EVENTS, MAX_QUEUED

pytestmark = pytest.mark.usefixtures("no_leftover_tasks")


@pytest.fixture
async def client(make_client: Any) -> Any:
    return await make_client()


@pytest.fixture
async def callers(client: Any) -> PageCallers:
    made = PageCallers(end_within=0.3, goodbye=0.1)
    made.attach(client.server.app[EVENTS], client.server.app[CALLS])
    return made


async def new_call(client: Any) -> str:
    response = await post_call(client)
    assert response.status == 201
    return call_id(response)


async def page_holding(client: Any, call: str) -> Any:
    """A page's event socket that has claimed ``call``."""
    ws = await client.ws_connect("/api/events")
    await ws.send_json({"type": "call", "call_id": call})
    record = client.server.app[CALLS].get(call)
    await wait_for(lambda: record.owners == 1, timeout=5, what="the claim")
    return ws


async def received(ws: Any) -> dict[str, Any]:
    return dict(json.loads(await within(ws.receive_str(), 5, "a pushed event")))


async def test_only_the_page_that_holds_the_call_hears_of_it(client: Any) -> None:
    hub = client.server.app[EVENTS]
    first, second = await new_call(client), await new_call(client)
    assert not hub.push(first, {"type": "tool", "state": "running"})  # no page holds it yet
    ws = await page_holding(client, first)
    other = await page_holding(client, second)
    assert hub.push(first, {"type": "tool", "state": "running"})
    assert hub.push(second, {"type": "end"})
    assert await received(ws) == {"type": "tool", "state": "running", "call_id": first}
    assert await received(other) == {"type": "end", "call_id": second}
    # A page that claims another call lets the first go: it hears only of the new one.
    third = await new_call(client)
    await ws.send_json({"type": "call", "call_id": third})
    await wait_for(lambda: client.server.app[CALLS].get(third).owners == 1, what="the new claim")
    assert not hub.push(first, {"type": "end"}) and hub.push(third, {"type": "end"})
    assert (await received(ws))["call_id"] == third
    await ws.close()
    await wait_for(lambda: not hub.push(third, {"type": "end"}), timeout=5, what="the page gone")
    await other.close()


async def test_what_waits_for_a_page_is_bounded_and_what_is_taken_arrives_in_order(client: Any) -> None:
    hub = client.server.app[EVENTS]
    call = await new_call(client)
    ws = await page_holding(client, call)
    assert not hub.push(call, {"type": "show", "text": "x" * MAX_EVENT})  # one event too big
    big = "y" * (MAX_QUEUED // 3)
    taken = [hub.push(call, {"type": "show", "text": big, "n": n}) for n in range(4)]
    assert taken == [True, True, False, False]  # the bytes waiting for the page are capped
    many = [hub.push(call, {"type": "tool", "n": n}) for n in range(MAX_EVENTS)]
    assert many.count(True) == MAX_EVENTS - 2  # and the events
    got = [await received(ws) for _ in range(MAX_EVENTS)]
    assert [e["n"] for e in got] == [0, 1, *range(MAX_EVENTS - 2)]
    assert got[0]["text"] == big
    await ws.close()


async def test_a_page_told_to_end_that_does_not_is_hung_up_by_the_server(
    client: Any, callers: PageCallers, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voicekiosk")
    call = await new_call(client)
    ws = await page_holding(client, call)
    assert callers(call).end() is True
    assert await received(ws) == {"type": "end", "call_id": call}
    await wait_for(lambda: fake.recorded("hangup"), timeout=5, what="the server's hang-up")
    line = f"hang-up {call} after the agent ended the conversation"
    await wait_for(lambda: line in caplog.text, timeout=5, what="the hang-up logged")  # after OpenAI's answer
    assert client.server.app[CALLS].get(call) is None
    await ws.close()


async def test_with_no_page_the_call_ends_after_a_short_goodbye(client: Any, callers: PageCallers, fake: FakeOpenAI):
    call = await new_call(client)
    assert callers(call).end() is False
    await wait_for(lambda: fake.recorded("hangup"), timeout=5, what="the server's hang-up")
    assert client.server.app[CALLS].get(call) is None


async def test_a_page_that_hangs_up_in_time_leaves_the_server_nothing_to_do(client: Any, fake: FakeOpenAI) -> None:
    callers = PageCallers(end_within=30)  # the page's hang-up comes first however slow the machine
    callers.attach(client.server.app[EVENTS], client.server.app[CALLS])
    call = await new_call(client)
    ws = await page_holding(client, call)
    caller = callers(call)
    assert caller.end() and caller.end()  # asked twice: one hang-up pending, not two
    assert (await client.delete(f"/api/call/{call}")).status == 200
    await never(lambda: len(fake.recorded("hangup")) > 1, within=0.5, what="a second hang-up")
    assert len(fake.recorded("hangup")) == 1
    await ws.close()


async def test_page_tools_say_when_no_page_holds_the_call_and_work_only_in_one(
    client: Any, callers: PageCallers, tmp_path: Path
) -> None:
    runner = ToolRunner([ShowTool(tmp_path), EndConversationTool()])
    call = await new_call(client)
    outcome = await runner.call("show", '{"title": "Room 204"}', callers(call))
    assert not outcome.ok and "no screen is connected" in outcome.output
    outcome = await runner.call("end_conversation", "{}", callers(call))
    assert outcome.ok and "No screen is connected" in outcome.output
    for name in ("show", "end_conversation"):  # by hand (voicekiosk tools call): no call to act on
        outcome = await runner.call(name, '{"title": "x"}' if name == "show" else "{}")
        assert not outcome.ok and "works only during a call" in outcome.output


async def test_show_tells_the_page_what_the_model_is_told(client: Any, callers: PageCallers) -> None:
    runner = ToolRunner([ShowTool(None)])
    call = await new_call(client)
    ws = await page_holding(client, call)
    arguments = {"title": "Opening hours", "text": "Mon-Fri 9-17\n\nSat 10-14", "link": "https://example.org/h"}
    outcome = await runner.call("show", json.dumps(arguments), callers(call))
    assert outcome.ok and "a card titled 'Opening hours', a QR code for https://example.org/h" in outcome.output
    event = await received(ws)
    assert event["title"] == "Opening hours" and event["text"] == "Mon-Fri 9-17\nSat 10-14"
    assert event["link"] == "https://example.org/h" and event["qr"].startswith("data:image/svg+xml")
    assert "image" not in event
    outcome = await runner.call("show", '{"image": "map.png"}', callers(call))
    assert not outcome.ok and "no folder of images" in outcome.output
    await ws.close()
