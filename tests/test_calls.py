"""Every call belongs to a page: unclaimed or abandoned calls are hung up; lines are never oversold."""

from __future__ import annotations

import asyncio
import logging
import time

from tests.helpers import OFFER, call_id, post_call, wait_for
from voicekiosk.upstream.calls import STALE_AFTER, CallRegistry
from voicekiosk.upstream.realtime import RealtimeBroker
from voicekiosk.web.appkeys import CALLS


def hung_up(fake) -> list[str]:
    return [r.body for r in fake.recorded("hangup")]


async def test_a_call_no_page_claims_is_hung_up(make_client, fake):
    client = await make_client(orphan_grace=0.2)
    call = call_id(await post_call(client))
    await wait_for(lambda: hung_up(fake) == [call], timeout=5, what="the orphan hung up")
    assert len(client.server.app[CALLS]) == 0


async def test_a_claimed_call_lives_until_its_page_goes_away(make_client, fake):
    client = await make_client(orphan_grace=0.3)
    claimed = call_id(await post_call(client))
    ws = await client.ws_connect("/api/events")
    await ws.send_json({"type": "call", "call_id": claimed})
    calls = client.server.app[CALLS]
    await wait_for(lambda: calls.get(claimed).owners == 1, timeout=5, what="the claim")
    # A call nobody claims, made after the claimed one: once it is hung up, the claimed call's
    # grace has run out too (same grace, started earlier), and it must still be alive.
    orphan = call_id(await post_call(client))
    await wait_for(lambda: hung_up(fake) == [orphan], timeout=5, what="the control call hung up")
    assert calls.get(claimed) is not None  # its page has it
    await ws.close()
    await wait_for(lambda: hung_up(fake) == [orphan, claimed], timeout=5, what="the released call hung up")


async def test_lines_are_never_oversold_to_concurrent_requests(make_client, fake):
    fake.latency = 0.2  # every request is still upstream when the next arrives
    client = await make_client(max_calls=4, rate=100)
    responses = await asyncio.gather(*(post_call(client) for _ in range(10)))
    assert sorted(r.status for r in responses) == [201] * 4 + [429] * 6
    assert len(fake.recorded("calls")) == 4


async def test_bad_claims_are_ignored_and_bounded(make_client, fake, caplog):
    caplog.set_level(logging.INFO, logger="voicekiosk")
    client = await make_client(sdp="browser", orphan_grace=30)
    calls = client.server.app[CALLS]
    ws = await client.ws_connect("/api/events")
    for junk in ("Infinity", "[" * 5000, "1" * 5000, '{"type": "call", "call_id": "rtc_x\\n"}', "{}"):
        await ws.send_str(junk)
    for n in range(10):
        await ws.send_json({"type": "call", "call_id": f"rtc_{n}"})
    await ws.send_json({"type": "transcript", "role": "user", "text": "still listening"})
    # The page's messages are handled in order: once the last one shows in the terminal, every
    # claim before it has been counted.
    await wait_for(lambda: "you: still listening" in caplog.text, timeout=5, what="the last message handled")
    assert len(calls) == 0  # no mint, no ticket: made-up ids register nothing (test_claims.py)
    assert not ws.closed
    await ws.close()


async def test_shutdown_is_prompt_with_pages_connected(make_client):
    client = await make_client()
    ws = await client.ws_connect("/api/events")
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 5
    assert ws.closed


async def test_a_call_older_than_any_session_can_be_is_hung_up_even_with_a_page(fake, settings):
    """OpenAI should have ended it; if it has not, the sweep does, page or no page."""
    engine = RealtimeBroker(settings)
    engine.max_session = -STALE_AFTER + 0.2  # type: ignore[misc]  # stale 0.2 s after it starts
    calls = CallRegistry(engine, max_calls=2, ticket_ttl=60, orphan_grace=30, sweep_every=0.05)
    try:
        calls.start()
        call = await engine.create_call(OFFER)
        assert call.call_id is not None
        calls.add(call.call_id, "127.0.0.1")
        assert calls.claim(call.call_id, "127.0.0.1")  # a page holds it
        await wait_for(lambda: hung_up(fake) == [call.call_id], timeout=5, what="the stale call hung up")
        assert calls.get(call.call_id) is None
    finally:
        await calls.close()
        await engine.aclose()


async def test_a_hang_up_under_way_at_shutdown_is_finished_not_cut_short(make_client, fake, caplog):
    """The registry forgets a call as its hang-up starts: cancelled then, nothing would end it."""
    caplog.set_level(logging.INFO, logger="voicekiosk")
    client = await make_client(orphan_grace=0.1)
    call = call_id(await post_call(client))
    calls = client.server.app[CALLS]
    fake.latency = 1.0  # the orphan's hang-up will still be upstream when the server stops
    await wait_for(lambda: calls.get(call) is None, timeout=5, what="the orphan's hang-up to start")
    await client.close()
    assert hung_up(fake) == [call]
    assert f"hang-up {call} as no page holds it" in caplog.text


class Ledger:
    """A ``CallObserver`` that writes down what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def call_started(self, record) -> None:
        self.events.append(("started", record.call_id, ""))

    def call_ended(self, record, reason) -> None:
        self.events.append(("ended", record.call_id, reason))


async def test_observers_hear_each_call_start_once_and_end_once_with_why(make_client, fake):
    client = await make_client(orphan_grace=0.2)
    calls = client.server.app[CALLS]
    ledger = Ledger()
    calls.observe(ledger)
    orphan = call_id(await post_call(client))
    await wait_for(lambda: ("ended", orphan, "orphan") in ledger.events, timeout=5, what="the orphan's end")
    kept = call_id(await post_call(client))
    ws = await client.ws_connect("/api/events")
    await ws.send_json({"type": "call", "call_id": kept})
    await wait_for(lambda: calls.get(kept).owners == 1, timeout=5, what="the claim")
    assert (await client.delete(f"/api/call/{kept}")).status == 200
    await ws.close()
    fake.latency = 0.0
    ended = call_id(await post_call(client))
    await client.close()  # the last one ends at shutdown
    assert ledger.events == [
        ("started", orphan, ""),
        ("ended", orphan, "orphan"),
        ("started", kept, ""),
        ("ended", kept, "page"),
        ("started", ended, ""),
        ("ended", ended, "shutdown"),
    ]
