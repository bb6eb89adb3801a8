"""``POST /api/call/{id}/language`` on loopback against the strict fake: the page names a language,
the server appends its own sentence for it to the Live session over the sideband it keeps for every
call (or a fresh attach if that is down), never anything the page sent; a bad code, an unknown call,
another device's call and the Realtime engine are refused before OpenAI is asked."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import post_call, wait_for
from voicekiosk.errors import UpstreamError
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.live_agent import LiveAnswerer
from voicekiosk.fake.live_call import LiveCall
from voicekiosk.tools.prompt import chosen_language
from voicekiosk.tools.spec import ToolsConfig
from voicekiosk.web.appkeys import CALLS, ENGINE

LIVE = {"engine": "live", "model": "gpt-live-1.1", "languages": ("en", "fr", "de")}


async def sidebands_tried(fake: FakeOpenAI, n: int = 1) -> None:
    """The server's sideband on each of ``n`` calls has been tried (the canned answerer has no
    session: OpenAI says 404 and it is not tried again), so any later attach is an instruction's."""
    await wait_for(lambda: len(fake.recorded("live_attach")) == n, timeout=5, what="the calls' sidebands")


async def tell(client: Any, call_id: str, body: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post(f"/api/call/{call_id}/language", json=body)
    return response.status, await response.json()


async def test_a_code_that_is_not_one_of_the_kiosk_s_languages_is_refused(make_client: Any, fake: FakeOpenAI) -> None:
    client = await make_client(**LIVE)
    response = await post_call(client)
    call_id = response.headers["Location"].rsplit("/", 1)[-1]
    await sidebands_tried(fake)
    # es is shipped but not offered here; the rest are no codes at all.
    for body in ({"code": "es"}, {"code": "xx"}, {"code": ["fr"]}, {"code": "FR"}, {}, {"text": "fr"}):
        status, answer = await tell(client, call_id, body)
        assert (status, answer["error"]["code"]) == (400, "unknown_language"), body
        assert answer["error"]["message"] == 'Send {"code": ...}, one of: en, fr, de.'
    response = await client.post(f"/api/call/{call_id}/language", data=b"fr")
    assert response.status == 400 and (await response.json())["error"]["code"] == "not_json"
    assert len(fake.recorded("live_attach")) == 1  # OpenAI never asked


async def test_an_unknown_call_is_404_and_another_device_s_call_is_403(make_client: Any, fake: FakeOpenAI) -> None:
    client = await make_client(**LIVE)
    for call_id in ("live_nosuchcall", "a" * 300, "live%20x"):
        status, answer = await tell(client, call_id, {"code": "fr"})
        assert (status, answer["error"]["code"]) == (404, "unknown_call"), call_id
    # A phone on the LAN made this one (its id is no secret to the kiosk's own page).
    client.server.app[CALLS].add("live_aphonescall", "192.0.2.7")
    await sidebands_tried(fake)
    status, answer = await tell(client, "live_aphonescall", {"code": "fr"})
    assert (status, answer["error"]["code"]) == (403, "not_your_call")
    assert len(fake.recorded("live_attach")) == 1


async def test_one_change_at_a_time_per_call(make_client: Any, fake: FakeOpenAI) -> None:
    """Each append opens a connection to OpenAI: while one runs, another for the call is refused."""
    client = await make_client(**LIVE)
    response = await post_call(client)
    call_id = response.headers["Location"].rsplit("/", 1)[-1]
    client.server.app[CALLS].get(call_id).instructing = True  # one under way
    await sidebands_tried(fake)
    status, answer = await tell(client, call_id, {"code": "fr"})
    assert (status, answer["error"]["code"]) == (409, "busy")
    assert len(fake.recorded("live_attach")) == 1


async def test_cross_site_requests_are_refused(make_client: Any) -> None:
    client = await make_client(**LIVE)
    response = await post_call(client)
    call_id = response.headers["Location"].rsplit("/", 1)[-1]
    response = await client.post(
        f"/api/call/{call_id}/language", json={"code": "fr"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status == 403 and (await response.json())["error"]["code"] == "cross_origin"


async def test_on_realtime_the_page_tells_its_session_itself(make_client: Any, fake: FakeOpenAI) -> None:
    client = await make_client(languages=("en", "fr"))
    response = await post_call(client)
    status, answer = await tell(client, response.headers["Location"].rsplit("/", 1)[-1], {"code": "fr"})
    assert (status, answer["error"]["code"]) == (409, "not_supported")
    config = await (await client.get("/api/config")).json()
    assert config["languages"][1]["say"] == chosen_language("fr")


async def test_a_call_whose_session_openai_no_longer_has_is_404(make_client: Any, fake: FakeOpenAI) -> None:
    """The canned answerer has no session to attach to: OpenAI says 404, and so do we."""
    client = await make_client(**LIVE)
    response = await post_call(client)
    await sidebands_tried(fake)
    status, answer = await tell(client, response.headers["Location"].rsplit("/", 1)[-1], {"code": "fr"})
    assert (status, answer["error"]["code"]) == (404, "unknown_call")
    assert len(fake.recorded("live_attach")) == 2  # the sideband's, then the instruction's fresh attach


# -- with a started session (an aiortc page stand-in: the conftest's ``page``) ---------------------


@pytest.fixture
def live(fake: FakeOpenAI) -> LiveAnswerer:
    fake.live = LiveAnswerer()
    fake.live_rules = fake.live.rules
    return fake.live


async def started(client: Any, live: LiveAnswerer, page: Any) -> tuple[str, LiveCall]:
    from tests.rtc_client import join_through  # aiortc: only for the slow tests

    call_id = await join_through(client, page, "session.started")
    return call_id, live.calls[call_id]


def appended(call: LiveCall) -> list[tuple[str, dict[str, Any]]]:
    """The instructions appends that reached the session, and which way: "channel" or "sideband"."""
    return [(way, event) for way, event in call.commands if event["type"] == "session.instructions.append"]


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_tasks")
async def test_the_session_gets_exactly_the_server_s_sentence_on_its_sideband_and_goes_on(
    make_client: Any, fake: FakeOpenAI, live: LiveAnswerer, page: Any
) -> None:
    client = await make_client(**LIVE)
    call_id, call = await started(client, live, page)
    await wait_for(lambda: call.sidebands == 1, timeout=5, what="the call's sideband")
    assert await tell(client, call_id, {"code": "fr"}) == (200, {"call_id": call_id, "language": "fr"})
    [(way, event)] = appended(call)
    assert way == "sideband" and event.pop("event_id").startswith("rule_")
    assert event == {"type": "session.instructions.append", "delegation_id": None, "content": chosen_language("fr")}
    assert event["content"] == "The visitor chose Français: speak French from now on."
    # The sideband stays and the session goes on; a second pick appends a second rule.
    [attach] = fake.recorded("live_attach")
    assert attach.body == call_id and call.sidebands == 1
    assert not call.closed and call.closed_reason is None
    assert await tell(client, call_id, {"code": "de"}) == (200, {"call_id": call_id, "language": "de"})
    assert [event["content"] for _, event in appended(call)] == [chosen_language("fr"), chosen_language("de")]
    assert len(fake.recorded("live_attach")) == 1 and not call.closed
    assert ("out", "error") not in [(way, kind) for _, way, kind in call.events]
    # A call hung up is gone: 404.
    assert (await client.delete(f"/api/call/{call_id}")).status == 200
    status, answer = await tell(client, call_id, {"code": "fr"})
    assert (status, answer["error"]["code"]) == (404, "unknown_call")


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_tasks")
async def test_with_tools_it_goes_on_the_sideband_the_server_keeps(
    make_client: Any, fake: FakeOpenAI, live: LiveAnswerer, page: Any, tools: ToolsConfig
) -> None:
    client = await make_client(tools=tools, **LIVE)
    call_id, call = await started(client, live, page)
    await wait_for(lambda: call.sidebands == 1, timeout=5, what="the tools' sideband")
    assert await tell(client, call_id, {"code": "de"}) == (200, {"call_id": call_id, "language": "de"})
    [(way, event)] = appended(call)
    assert way == "sideband" and event["content"] == chosen_language("de")
    assert len(fake.recorded("live_attach")) == 1 and call.sidebands == 1  # no second attach; still open


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_tasks")
async def test_openai_refusing_an_append_is_a_502_with_its_code_and_the_call_goes_on(
    make_client: Any, fake: FakeOpenAI, live: LiveAnswerer, page: Any
) -> None:
    """An append over the 500 tokens one takes (§2.4), sent by the engine itself: the strict fake refuses it."""
    client = await make_client(**LIVE)
    call_id, call = await started(client, live, page)
    with pytest.raises(UpstreamError) as caught:
        await client.server.app[ENGINE].instruct(call_id, "word " * 2000)
    error = caught.value
    assert (error.status, error.code, error.upstream_code) == (502, "upstream_rejected", "string_above_max_length")
    assert not call.closed and len(appended(call)) == 1
