"""The call record end to end on loopback: a page stand-in (aiortc, its microphone a recording) in a
call through our app with the strict fake; the server counts OpenAI's usage on its own sideband
(the responses' tokens by kind and the transcripts'), and the call's row holds them and its cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.ledger.prices import PRICES
from voicekiosk.ledger.tokens import Tokens
from voicekiosk.web.appkeys import CALLS, EVENTS, LEDGER

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_leftover_tasks")]  # aiortc peers


@pytest.fixture
def fake(fake: FakeOpenAI) -> FakeOpenAI:
    fake.answerer = AgentAnswerer()
    return fake


@pytest.fixture
async def speaker(mic_wav: Path) -> Any:
    """A page stand-in whose microphone says the recording's two sentences."""
    from tests.rtc_client import Client

    peer = Client(mic=mic_wav)
    yield peer
    await peer.close()


async def test_the_server_counts_openai_s_usage_and_the_row_holds_it_and_its_cost(
    make_client: Any, fake: FakeOpenAI, speaker: Any
) -> None:
    from tests.rtc_client import join_through

    client = await make_client()
    call_id = await join_through(client, speaker, "session.created")
    record = client.server.app[CALLS].get(call_id)
    # The recording's two sentences: two transcripts, two responses (the first cut off by the second).
    await speaker.wait_for("conversation.item.input_audio_transcription.completed", n=2, timeout=15)
    await speaker.wait_for("response.done", n=2, timeout=15)
    transcribed = [e["usage"] for e in speaker.of("conversation.item.input_audio_transcription.completed")]
    responses = [e["response"]["usage"] for e in speaker.of("response.done")]
    expected, heard = Tokens(), Tokens()
    for spent in responses:
        expected.add(spent)
    for spent in transcribed:
        heard.add(spent)
    # What the page saw is what the server counted on its own sideband (not from the page).
    await wait_for(lambda: record.tokens == expected and record.heard == heard, what="the server's count")
    assert record.usage_by == "server" and heard.audio_in > 0 and expected.text_cached > 0  # cached from turn 2
    cost = expected.cost(PRICES["gpt-realtime-2.1"]) + heard.cost(PRICES["gpt-4o-mini-transcribe"])
    assert client.server.app[LEDGER].today().cost == pytest.approx(cost)

    assert (await client.delete(f"/api/call/{call_id}")).status == 200
    [row] = client.server.app[LEDGER].store.query("SELECT * FROM calls")
    assert (row["call_id"], row["reason"], row["usage_by"]) == (call_id, "page", "server")
    assert row["heard_audio_in"] == heard.audio_in and row["audio_out"] == expected.audio_out
    assert row["cost"] == pytest.approx(cost) and row["client"] == "127.0.0.1"


async def test_a_response_the_sideband_missed_counts_as_the_page_s_and_one_it_heard_counts_once(
    make_client: Any, fake: FakeOpenAI, page: Any
) -> None:
    """The page reports every response's usage with its id (``realtime.js``); the server's own count
    wins for a response it heard, and the page's stands for one its sideband was down for."""
    from tests.rtc_client import join_through

    client = await make_client()
    call_id = await join_through(client, page, "session.created")
    call = fake.answerer.calls[call_id]  # type: ignore[attr-defined]
    record = client.server.app[CALLS].get(call_id)
    await wait_for(lambda: call.sidebands == 1, what="the sideband")
    async with client.ws_connect("/api/events") as ws:
        await ws.send_json({"type": "call", "call_id": call_id})
        await wait_for(lambda: record.owners == 1, what="the claim")

        async def respond(n: int) -> dict[str, Any]:
            page.send({"type": "response.create"})
            response = (await page.wait_for("response.done", n=n, timeout=15))["response"]
            report = {"type": "usage", "call_id": call_id, "response_id": response["id"], "usage": response["usage"]}
            await ws.send_json(report)
            return response

        first, heard = await respond(1), Tokens()
        heard.add(first["usage"])
        await wait_for(lambda: record.tokens == heard, what="the server's count of the first response")
        await ws.send_json({"type": "state", "state": "listening"})  # after the report, in order
        await wait_for(lambda: client.server.app[EVENTS].state_of(call_id) == "listening", what="the report read")
        assert record.tokens == heard and record.usage_by == "server"  # the page's report of it: not again

        fake.add_fault("sideband", status=401)  # the sideband drops, and is not let back
        call.drop_sidebands()
        await wait_for(lambda: fake.counts["sideband"] == 2 and call.sidebands == 0, what="the sideband gone")
        second = await respond(2)
        missed = Tokens()
        missed.add(second["usage"])
        heard.merge(missed)
        await wait_for(lambda: record.tokens == heard, what="the page's count of the second response")
        assert record.page_tokens == missed and record.usage_by == "server+page"
    assert (await client.delete(f"/api/call/{call_id}")).status == 200
    [row] = client.server.app[LEDGER].store.query("SELECT usage_by, audio_out, cost FROM calls")
    assert (row["usage_by"], row["audio_out"]) == ("server+page", heard.audio_out)
    assert row["cost"] == pytest.approx(heard.cost(PRICES["gpt-realtime-2.1"]))
