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
from voicekiosk.web.appkeys import CALLS, LEDGER

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
    assert record.usage_by == "server" and heard.audio_in > 0 and expected.text_cached >= 0
    cost = expected.cost(PRICES["gpt-realtime-2.1"]) + heard.cost(PRICES["gpt-4o-mini-transcribe"])
    assert client.server.app[LEDGER].today().cost == pytest.approx(cost)

    assert (await client.delete(f"/api/call/{call_id}")).status == 200
    [row] = client.server.app[LEDGER].store.query("SELECT * FROM calls")
    assert (row["call_id"], row["reason"], row["usage_by"]) == (call_id, "page", "server")
    assert row["heard_audio_in"] == heard.audio_in and row["audio_out"] == expected.audio_out
    assert row["cost"] == pytest.approx(cost) and row["client"] == "127.0.0.1"
