"""Every call belongs to a page: unclaimed or abandoned calls are hung up; lines are never oversold."""

from __future__ import annotations

import asyncio
import dataclasses
import time

from tests.test_broker import OFFER
from voicekiosk.web.app import create_app
from voicekiosk.web.appkeys import CALLS

SDP = {"Content-Type": "application/sdp"}


async def wait_until(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_call_no_page_claims_is_hung_up(aiohttp_client, settings, fake):
    client = await aiohttp_client(create_app(settings, orphan_grace=0.2))
    response = await client.post("/api/call", data=OFFER, headers=SDP)
    call_id = response.headers["Location"].rsplit("/", 1)[-1]
    await wait_until(lambda: [r.body for r in fake.recorded("hangup")] == [call_id])
    assert len(client.server.app[CALLS]) == 0


async def test_a_claimed_call_lives_until_its_page_goes_away(aiohttp_client, settings, fake):
    client = await aiohttp_client(create_app(settings, orphan_grace=0.3))
    response = await client.post("/api/call", data=OFFER, headers=SDP)
    call_id = response.headers["Location"].rsplit("/", 1)[-1]
    ws = await client.ws_connect("/api/events")
    await ws.send_json({"type": "call", "call_id": call_id})
    await asyncio.sleep(0.8)
    assert fake.recorded("hangup") == []  # its page has it
    await ws.close()
    await wait_until(lambda: [r.body for r in fake.recorded("hangup")] == [call_id])


async def test_lines_are_never_oversold_to_concurrent_requests(aiohttp_client, settings, fake):
    fake.latency = 0.2  # every request is still upstream when the next arrives
    client = await aiohttp_client(create_app(dataclasses.replace(settings, max_calls=4, rate=100)))
    responses = await asyncio.gather(*(client.post("/api/call", data=OFFER, headers=SDP) for _ in range(10)))
    assert sorted(r.status for r in responses) == [201] * 4 + [429] * 6
    assert len(fake.recorded("calls")) == 4


async def test_bad_claims_are_ignored_and_bounded(aiohttp_client, settings, fake):
    app = create_app(dataclasses.replace(settings, sdp="browser"), orphan_grace=30)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/api/events")
    for junk in ("Infinity", "[" * 5000, "1" * 5000, '{"type": "call", "call_id": "rtc_x\\n"}', "{}"):
        await ws.send_str(junk)
    for n in range(10):
        await ws.send_json({"type": "call", "call_id": f"rtc_{n}"})
    await ws.send_json({"type": "transcript", "role": "user", "text": "still listening"})
    await wait_until(lambda: len(app[CALLS]) == 4)  # at most four calls per page
    await asyncio.sleep(0.1)
    assert len(app[CALLS]) == 4 and not ws.closed
    await ws.close()


async def test_shutdown_is_prompt_with_pages_connected(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings))
    ws = await client.ws_connect("/api/events")
    started = time.monotonic()
    await client.close()
    assert time.monotonic() - started < 5
    assert ws.closed
