"""Why a call ended, as the server learns it (against the strict fake on loopback): the page's idle
hang-up says so; OpenAI's own end (a Realtime call gone, a Live session closed) frees the line, ends
the row as ``upstream`` and tells the page; a call a page re-claims after a restart, unknown to the
new server, is hung up from here and the page told to start one this server counts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import call_id, post_call, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.answerers import CannedAnswerer
from voicekiosk.upstream.calls import LET_GO_S
from voicekiosk.web.appkeys import CALLS, LEDGER


def reasons(client: Any) -> list[str]:
    return [row["reason"] for row in client.server.app[LEDGER].store.query("SELECT reason FROM calls ORDER BY rowid")]


async def test_the_idle_hang_up_is_recorded_as_idle_and_any_other_word_as_the_page_s(make_client: Any) -> None:
    client = await make_client()
    for asked in ("idle", "admin", "budget\n"):
        made = call_id(await post_call(client))
        assert (await client.delete(f"/api/call/{made}", params={"reason": asked})).status == 200
    made = call_id(await post_call(client))
    assert (await client.delete(f"/api/call/{made}")).status == 200
    assert reasons(client) == ["idle", "page", "page", "page"]  # a page cannot claim the server's reasons


async def next_push(ws: Any) -> dict[str, Any]:
    """The next event the server pushes to a page (bounded: ``receive_json`` times out)."""
    return dict(await ws.receive_json(timeout=10))


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_tasks")
async def test_a_realtime_call_openai_ends_frees_its_line_and_its_page_is_told(
    make_client: Any, fake: FakeOpenAI, page: Any
) -> None:
    from tests.rtc_client import join_through

    fake.answerer = agent = AgentAnswerer()
    client = await make_client()
    made = await join_through(client, page, "session.created")
    calls = client.server.app[CALLS]
    async with client.ws_connect("/api/events") as ws:
        await ws.send_json({"type": "call", "call_id": made})
        await wait_for(lambda: calls.get(made).owners == 1, what="the claim")
        await wait_for(lambda: fake.recorded("sideband"), what="the server's sideband")
        assert await agent.drop(made) == made  # OpenAI ends it: its sideband goes, and the call is gone
        assert await next_push(ws) == {"type": "end", "now": True, "why": "upstream", "call_id": made}
        # The page hangs up its side, as told: the end stays OpenAI's.
        assert (await client.delete(f"/api/call/{made}", params={"reason": "idle"})).status == 200
    assert calls.get(made) is None and len(calls) == 0
    await wait_for(lambda: reasons(client)[0], what="the call's end written")
    assert reasons(client) == ["upstream"]


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_tasks")
async def test_a_live_session_that_expires_is_ended_as_upstream(make_client: Any, fake: FakeOpenAI, page: Any) -> None:
    from tests.rtc_client import join_through
    from voicekiosk.fake.live_agent import LiveAnswerer
    from voicekiosk.fake.live_rules import LiveRules

    fake.live = live = LiveAnswerer(rules=LiveRules(expires_in=1.5))
    fake.live_rules = live.rules
    client = await make_client(engine="live", model="gpt-live-1.1")
    made = await join_through(client, page, "session.started")
    calls = client.server.app[CALLS]
    async with client.ws_connect("/api/events") as ws:
        await ws.send_json({"type": "call", "call_id": made})
        assert await next_push(ws) == {"type": "end", "now": True, "why": "upstream", "call_id": made}
        assert live.calls[made].closed
        # A page that does not hang up has LET_GO_S: then the server ends it (the line is free).
        await wait_for(lambda: calls.get(made) is None, timeout=LET_GO_S + 5, what="the call forgotten")
    await wait_for(lambda: reasons(client)[0], what="the call's end written")
    assert reasons(client) == ["upstream"]


@pytest.mark.usefixtures("no_leftover_tasks")
async def test_a_call_reclaimed_after_a_restart_is_hung_up_and_its_page_told_to_start_again(
    make_client: Any, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """The first server's hang-up at shutdown is refused (as at a crash, the call runs on upstream);
    the second, on the same data directory and the same fake, does not know the call its page
    re-claims: it tells the page, and hangs the call up with the real key itself."""
    assert isinstance(fake.answerer, CannedAnswerer)
    first = await make_client()
    made = call_id(await post_call(first))
    async with first.ws_connect("/api/events") as ws:
        await ws.send_json({"type": "call", "call_id": made})
        await wait_for(lambda: first.server.app[CALLS].get(made).owners == 1, what="the claim")
    fake.add_fault("hangup", status=500, times=10)
    await first.close()
    assert made in fake.answerer.calls  # left running upstream
    fake.clear_faults()

    second = await make_client()
    async with second.ws_connect("/api/events") as ws:
        await ws.send_json({"type": "call", "call_id": made})
        assert await next_push(ws) == {"type": "end", "now": True, "why": "unknown", "call_id": made}
        await wait_for(lambda: made not in fake.answerer.calls, what="the old call hung up upstream")
        assert len(second.server.app[CALLS]) == 0  # it is not taken on either
        # Bounded: made-up ids from one device cannot make this server send unlimited hang-ups.
        sent = len(fake.recorded("hangup"))
        for n in range(3):
            await ws.send_json({"type": "call", "call_id": f"rtc_madeup{n}"})
        for n in range(3):  # each page is told to start afresh; only the first is hung up from here
            assert (await next_push(ws))["call_id"] == f"rtc_madeup{n}"
        await wait_for(lambda: len(fake.recorded("hangup")) == sent + 1, what="the one more hang-up")
        # The refusals are counted, not listed: made-up ids cannot flood the terminal.
        assert caplog.text.count("not hung up from here (too many of late)") == 1
    assert (await post_call(second)).status == 201  # the page's next call is one this server counts
