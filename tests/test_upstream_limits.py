"""OpenAI's answers are read only up to a size, and a call it made but answered unusably is hung up."""

from __future__ import annotations

import logging

import pytest

from tests.helpers import post_call
from voicekiosk.upstream.http import MAX_ANSWER


async def error_code(response) -> str:
    return (await response.json())["error"]["code"]


@pytest.mark.parametrize("size, status", [(MAX_ANSWER, 201), (MAX_ANSWER + 1, 502)], ids=["at-cap", "over-cap"])
async def test_a_call_answer_over_the_cap_is_refused_and_hung_up(make_client, fake, size, status):
    client = await make_client()
    fake.add_fault("calls", kind="oversized", size=size, times=1)
    response = await post_call(client)
    assert response.status == status
    assert fake.counts["calls"] == 1
    if status == 502:
        assert await error_code(response) == "upstream_malformed"
        assert len(fake.recorded("hangup")) == 1 and fake.answerer.calls == set()  # made, then ended
    else:
        assert len(await response.read()) == MAX_ANSWER and fake.answerer.calls


async def test_a_call_answered_with_something_else_than_sdp_is_hung_up(make_client, fake, caplog):
    caplog.set_level(logging.INFO, logger="voicekiosk")
    client = await make_client()
    fake.add_fault("calls", kind="garbled", times=1)
    response = await post_call(client)
    assert response.status == 502 and await error_code(response) == "upstream_malformed"
    [hang_up] = fake.recorded("hangup")
    assert fake.answerer.calls == set()
    assert f"hang-up {hang_up.body}: its answer was unusable" in caplog.text
    assert (await post_call(client)).status == 201  # the next call is fine


async def test_an_unusable_call_whose_hang_up_fails_is_still_a_502(make_client, fake, caplog):
    client = await make_client()
    fake.add_fault("calls", kind="garbled", times=1)
    fake.add_fault("hangup", status=500, times=1)
    response = await post_call(client)
    assert response.status == 502 and await error_code(response) == "upstream_malformed"
    assert "its answer was unusable) failed: upstream_error" in caplog.text


@pytest.mark.parametrize("kind", ["oversized", "garbled"])
async def test_an_unusable_mint_is_a_502(make_client, fake, kind):
    client = await make_client(sdp="browser")
    fake.add_fault("client_secrets", kind=kind, times=1)
    response = await client.post("/api/token")
    assert response.status == 502 and await error_code(response) == "upstream_malformed"
    assert (await client.post("/api/token")).status == 200
