"""``--sdp browser``: a page registers the call it started only with its mint's ticket, one at a time."""

from __future__ import annotations

import logging
import secrets

import aiohttp
import pytest

from tests.helpers import OFFER, SDP, call_id, post_call, wait_for
from voicekiosk.upstream.tickets import MAX_TICKETS, ClaimTickets
from voicekiosk.web import events
from voicekiosk.web.appkeys import CALLS
from voicekiosk.web.events import MAX_CLAIMS


async def mint(client) -> dict:
    response = await client.post("/api/token")
    assert response.status == 200, await response.text()
    return await response.json()


async def browser_call(client, fake_server) -> tuple[str, str]:
    """What a page does in browser-SDP mode: mint, post the offer to (fake) OpenAI itself.

    Returns the call's id and the mint's claim ticket.
    """
    minted = await mint(client)
    headers = {**SDP, "Authorization": f"Bearer {minted['value']}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(minted["calls_url"], data=OFFER, headers=headers) as answer,
    ):
        assert answer.status == 201
        return call_id(answer), minted["claim"]


async def handled(ws, caplog, marker: str) -> None:
    """Wait until the socket's messages so far are handled (they are handled in order)."""
    await ws.send_json({"type": "transcript", "role": "user", "text": marker})
    await wait_for(lambda: f"you: {marker}" in caplog.text, timeout=5, what="the page's messages handled")


@pytest.fixture
def log_info(caplog):
    caplog.set_level(logging.INFO, logger="voicekiosk")
    return caplog


async def test_sprayed_call_ids_never_make_others_busy(make_client, log_info):
    client = await make_client(sdp="browser", max_calls=2, rate=1000, orphan_grace=30)
    sprayers = [await client.ws_connect("/api/events") for _ in range(3)]
    for n, ws in enumerate(sprayers):
        for _ in range(15):  # 30 messages: within the socket's rate
            fake_id = "rtc_" + secrets.token_hex(12)
            await ws.send_json({"type": "call", "call_id": fake_id, "claim": secrets.token_urlsafe(18)})
            await ws.send_json({"type": "call", "call_id": fake_id})
        await handled(ws, log_info, f"sprayed {n}")
    assert len(client.server.app[CALLS]) == 0
    # Every line is still free for everyone else: two mints, then a server-side call.
    for _ in range(2):
        await mint(client)
    response = await post_call(client)
    assert response.status == 201, await response.text()
    for ws in sprayers:
        await ws.close()


async def test_a_mint_registers_one_call_once(make_client, fake_server, log_info):
    client = await make_client(sdp="browser", max_calls=4, rate=1000, orphan_grace=30)
    calls = client.server.app[CALLS]
    call, ticket = await browser_call(client, fake_server)
    other, _ = await browser_call(client, fake_server)  # its ticket is never shown
    page = await client.ws_connect("/api/events")
    thief = await client.ws_connect("/api/events")
    await thief.send_json({"type": "call", "call_id": other, "claim": ticket})  # the wrong call, first
    await page.send_json({"type": "call", "call_id": call, "claim": ticket})
    await handled(thief, log_info, "thief done")
    await handled(page, log_info, "page done")
    # The ticket went to whoever used it first (the thief): spent, it registers nothing else.
    assert calls.get(other) is not None and calls.get(call) is None
    await page.send_json({"type": "call", "call_id": call, "claim": ticket})
    await handled(page, log_info, "again")
    assert calls.get(call) is None and len(calls) == 1
    for ws in (page, thief):
        await ws.close()


async def test_one_page_holds_one_line(make_client, fake_server, fake, log_info):
    client = await make_client(sdp="browser", max_calls=4, rate=1000, orphan_grace=0.3)
    calls = client.server.app[CALLS]
    first, first_ticket = await browser_call(client, fake_server)
    second, second_ticket = await browser_call(client, fake_server)
    page = await client.ws_connect("/api/events")
    await page.send_json({"type": "call", "call_id": first, "claim": first_ticket})
    await wait_for(lambda: calls.get(first) and calls.get(first).owners == 1, timeout=5, what="the first claim")
    await page.send_json({"type": "call", "call_id": second, "claim": second_ticket})
    # The page's new call lets its old one go: hung up after the grace, like any abandoned call.
    await wait_for(lambda: [r.body for r in fake.recorded("hangup")] == [first], timeout=5, what="the old call hung up")
    assert calls.get(first) is None
    assert calls.get(second).owners == 1
    # A page coming back after a reconnect re-announces its call: it is known, no ticket needed.
    again = await client.ws_connect("/api/events")
    await again.send_json({"type": "call", "call_id": second, "claim": second_ticket})
    await wait_for(lambda: calls.get(second).owners == 2, timeout=5, what="the re-announced claim")
    for ws in (page, again):
        await ws.close()


def test_tickets_are_spent_once_expire_and_stay_bounded():
    tickets = ClaimTickets(ttl=60)
    ticket = tickets.issue()
    assert tickets.redeem(ticket) and not tickets.redeem(ticket)
    assert not tickets.redeem("made-up") and not tickets.redeem(None) and not tickets.redeem(["x"])
    expired = ClaimTickets(ttl=0)
    assert not expired.redeem(expired.issue())
    for _ in range(MAX_TICKETS + 10):
        tickets.issue()
    assert len(tickets) == MAX_TICKETS
    assert tickets.redeem(tickets.issue())  # the newest still works


async def test_one_device_with_real_tickets_cannot_pin_more_than_one_line(make_client, fake, log_info):
    """Each mint's ticket is real, but the call ids are made up: the device still holds one line."""
    client = await make_client(sdp="browser", max_calls=4, rate=1000, orphan_grace=30)
    sockets = [await client.ws_connect("/api/events") for _ in range(4)]
    made_up = [f"rtc_madeup{n}" for n in range(4)]
    for n, (ws, made_up_id) in enumerate(zip(sockets, made_up, strict=True)):
        await ws.send_json({"type": "call", "call_id": made_up_id, "claim": (await mint(client))["claim"]})
        await handled(ws, log_info, f"claimed {n}")
    calls = client.server.app[CALLS]
    assert len(calls) == 1 and calls.get(made_up[-1]) is not None  # the newest; the others let go
    await wait_for(lambda: len(fake.recorded("hangup")) == 3, what="the replaced calls hung up")
    # Three lines stay free for everyone else.
    for _ in range(3):
        assert (await client.post("/api/token")).status == 200
    for ws in sockets:
        await ws.close()


async def test_a_page_claims_a_call_after_every_reconnect_within_a_bound_per_minute(make_client, log_info, monkeypatch):
    """A kiosk page keeps its socket for weeks and claims a new call after every drop: the bound is
    ``MAX_CLAIMS`` a minute, not over the socket's life (a 5th call once went unclaimed, hung up as
    an orphan 20 s in)."""
    client = await make_client(max_calls=MAX_CLAIMS + 3, rate=1000, orphan_grace=30)
    calls = client.server.app[CALLS]
    page = await client.ws_connect("/api/events")

    async def claim(n: int) -> str:
        response = await post_call(client)
        assert response.status == 201, await response.text()
        made = call_id(response)
        await page.send_json({"type": "call", "call_id": made})
        await handled(page, log_info, f"claimed {n}")
        return made

    ids = [await claim(n) for n in range(MAX_CLAIMS + 1)]
    # Each claim let the last one go (it waits out its grace); one more within the minute is refused.
    assert [calls.get(i).owners for i in ids] == [0] * (MAX_CLAIMS - 1) + [1, 0]
    monkeypatch.setattr(events, "CLAIM_WINDOW", 0.2)  # a minute later, as far as the bound can tell
    await wait_for(lambda: calls.get(ids[0]).seconds > 0.3, timeout=5, what="the window passed")
    late = await claim(MAX_CLAIMS + 1)
    assert calls.get(late).owners == 1 and calls.get(ids[-2]).owners == 0
    await page.close()
