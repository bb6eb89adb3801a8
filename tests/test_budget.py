"""The budget, enforced by the server against the strict fake on loopback: the day's spend (kept
over a restart) refuses new calls and mints with 402 ``budget_spent``; a call that reaches its
longest is told to wrap up on its sideband and hung up at the limit (the fake sees both); a call
under way when the budget is spent is ended too."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import post_call, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.call import AgentCall
from voicekiosk.fake.wire import usage
from voicekiosk.hours import parse_hours
from voicekiosk.ledger.book import CallBook
from voicekiosk.ledger.budget import WRAP_UP
from voicekiosk.ledger.store import Store
from voicekiosk.settings import Settings
from voicekiosk.upstream.record import CallRecord
from voicekiosk.web.appkeys import CALLS, LEDGER

QUICK = {"every": 0.1, "grace": 0.5}  # the budget's look at the day, and the goodbye's time


def spend_earlier(settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float:
    """A call that ended earlier today (by ``clock``), as a server that has since restarted wrote it: its cost."""
    book = CallBook(Store.open(settings.data_dir), settings, clock=clock)  # type: ignore[arg-type]
    call = CallRecord("rtc_earlier", "192.0.2.7", started=time.monotonic() - 60)
    call.tokens.add(usage(5.0, 30, 8.0, 3))
    call.counted_here = True
    book.call_started(call)
    book.call_ended(call, "idle")
    cost = book.today().cost
    book.close()
    return cost


async def test_a_spent_budget_refuses_calls_mints_and_wakes_after_a_restart(
    make_client: Any, settings: Settings, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    settings.data_dir.mkdir(mode=0o700)
    cost = spend_earlier(settings)
    assert cost > 0
    client = await make_client(budget_per_day=cost / 2)
    assert client.server.app[LEDGER].today().cost == pytest.approx(cost)  # the restart kept it
    for _ in range(2):
        response = await post_call(client)
        error = (await response.json())["error"]
        assert (response.status, error["code"]) == (402, "budget_spent")
        assert error["message"].startswith(f"Today's budget (${cost / 2:.2f}) is spent")
        assert error["budget"] == cost / 2 and error["spent"] == pytest.approx(cost, abs=1e-4)
    assert not fake.recorded("calls")  # OpenAI never asked
    woken = await client.post("/api/start")  # nor is a kiosk woken to be refused
    assert (woken.status, (await woken.json())["error"]["code"]) == (402, "budget_spent")
    assert caplog.text.count("budget: today's estimated spend") == 1  # the terminal says why, once
    # With room left, calls are made.
    roomy = await make_client(budget_per_day=cost * 2)
    assert (await post_call(roomy)).status == 201


@pytest.fixture
def agent(fake: FakeOpenAI) -> AgentAnswerer:
    fake.answerer = AgentAnswerer()
    return fake.answerer


def sideband_said(call: AgentCall) -> list[dict[str, Any]]:
    return [event for source, event in call.commands if source == "sideband"]


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_tasks")
async def test_a_long_call_is_told_to_wrap_up_then_hung_up_at_its_limit(
    make_client: Any, fake: FakeOpenAI, agent: AgentAnswerer, page: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.rtc_client import join_through

    caplog.set_level(logging.INFO, logger="voicekiosk")
    client = await make_client(max_call_minutes=0.1)  # 6 s: told at 3 s
    began = time.monotonic()
    call_id = await join_through(client, page, "session.created")
    call = agent.calls[call_id]
    told = await wait_for(lambda: sideband_said(call), timeout=6, what="the wrap-up")
    assert time.monotonic() - began < 5.5
    message = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": WRAP_UP}]}
    assert told[0] == {"type": "conversation.item.create", "item": message}
    await wait_for(
        lambda: [e["type"] for e in sideband_said(call)][:2] == ["conversation.item.create", "response.create"]
    )
    await wait_for(lambda: fake.recorded("hangup"), timeout=6, what="the hang-up")
    assert 5.5 < time.monotonic() - began < 9
    assert client.server.app[CALLS].get(call_id) is None
    store = client.server.app[LEDGER].store
    await wait_for(lambda: store.query("SELECT reason FROM calls")[0]["reason"], what="the call's end written")
    [row] = store.query("SELECT reason FROM calls")
    assert row["reason"] == "limit" and f"call {call_id} told to wrap up" in caplog.text
    assert "at the longest a call may last" in caplog.text


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_tasks")
async def test_a_call_under_way_when_the_budget_is_spent_is_ended_and_the_next_refused(
    make_client: Any, fake: FakeOpenAI, agent: AgentAnswerer, page: Any
) -> None:
    from tests.rtc_client import join_through

    client = await make_client(budget_per_day=0.000_001, budget_timing=QUICK)
    call_id = await join_through(client, page, "session.created")
    call = agent.calls[call_id]
    page.send({"type": "response.create"})  # the agent speaks: OpenAI's usage, on the sideband
    await wait_for(lambda: fake.recorded("hangup"), timeout=10, what="the hang-up")
    assert any(e["type"] == "conversation.item.create" for e in sideband_said(call))  # told to wrap up first
    store = client.server.app[LEDGER].store
    await wait_for(lambda: store.query("SELECT reason FROM calls")[0]["reason"], what="the call's end written")
    [row] = store.query("SELECT reason, cost, usage_by FROM calls")
    assert (row["reason"], row["usage_by"]) == ("budget", "server") and row["cost"] > 0.000_001
    response = await post_call(client)
    assert (response.status, (await response.json())["error"]["code"]) == (402, "budget_spent")


async def test_kept_transcripts_are_those_a_page_reports_for_the_call_it_holds(make_client: Any) -> None:
    client = await make_client(keep_transcripts=True)
    response = await post_call(client)
    call_id = response.headers["Location"].rsplit("/", 1)[-1]
    async with client.ws_connect("/api/events") as ws:
        await ws.send_json({"type": "transcript", "role": "user", "text": "Before claiming: not kept."})
        await ws.send_json({"type": "call", "call_id": call_id})
        await ws.send_json({"type": "transcript", "role": "user", "text": "When do you open?"})
        await ws.send_json({"type": "transcript", "role": "agent", "text": "At nine."})
        store = client.server.app[LEDGER].store
        rows = await wait_for(
            lambda: (
                len(store.query("SELECT * FROM transcripts")) == 2
                and store.query("SELECT call_id, role, text FROM transcripts ORDER BY at, rowid")
            ),
            what="two transcripts kept",
        )
    assert [tuple(r) for r in rows] == [(call_id, "user", "When do you open?"), (call_id, "agent", "At nine.")]


@pytest.mark.slow
@pytest.mark.usefixtures("no_leftover_tasks")
async def test_a_long_live_call_is_given_the_wrap_up_as_a_rule_then_closed_at_its_limit(
    make_client: Any, fake: FakeOpenAI, page: Any
) -> None:
    from tests.rtc_client import join_through
    from voicekiosk.fake.live_agent import LiveAnswerer

    fake.live = live = LiveAnswerer()
    fake.live_rules = live.rules
    client = await make_client(engine="live", model="gpt-live-1.1", max_call_minutes=0.1)
    call_id = await join_through(client, page, "session.started")
    call = live.calls[call_id]
    rules = await wait_for(
        lambda: [e for _, e in call.commands if e["type"] == "session.instructions.append"], timeout=6, what="the rule"
    )
    assert rules[0]["content"] == WRAP_UP
    await wait_for(lambda: call.closed, timeout=8, what="the session closed at the limit")
    store = client.server.app[LEDGER].store
    await wait_for(lambda: store.query("SELECT reason FROM calls")[0]["reason"], what="the call's end written")
    [row] = store.query("SELECT reason, billed_seconds, cost, usage_by FROM calls")
    assert (row["reason"], row["usage_by"]) == ("limit", "server") and row["cost"] == pytest.approx(
        max(15.0, row["billed_seconds"]) / 60 * 0.05
    )


async def test_in_browser_sdp_mode_a_page_s_usage_is_its_own_marked_and_bounded(
    make_client: Any, fake_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The server has no sideband there: the row's usage is the page's report, and a report beyond
    what a call of its age can have used is not counted (a page cannot run up the bill, or the budget)."""
    from tests.test_claims import browser_call

    caplog.set_level(logging.INFO, logger="voicekiosk")
    client = await make_client(sdp="browser", rate=100)
    made, ticket = await browser_call(client, fake_server)
    calls = client.server.app[CALLS]
    async with client.ws_connect("/api/events") as ws:
        await ws.send_json({"type": "call", "call_id": made, "claim": ticket})
        await wait_for(lambda: calls.get(made) is not None, what="the claim")
        spent = usage(3.0, 12, 4.0, 1)
        for _ in range(2):  # the same response said twice: counted once
            await ws.send_json({"type": "usage", "call_id": made, "usage": spent, "response_id": "resp_1"})
        await ws.send_json({"type": "usage", "call_id": made, "usage": spent})  # which response: not counted
        await ws.send_json({"type": "usage", "call_id": made, "response_id": "resp_2", "usage": {
            **spent, "input_token_details": {
            "text_tokens": 10**8, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 0}}})  # fmt: skip
        await wait_for(lambda: "beyond what the call can have used (not counted)" in caplog.text, what="the refusal")
        assert f"usage {made}: a page's report without its response's id (not counted)" in caplog.text
        record = calls.get(made)
        assert record.tokens.total == spent["total_tokens"]  # the first report only
        assert record.usage_by == "page"
        assert (await client.delete(f"/api/call/{made}")).status == 200
    [row] = client.server.app[LEDGER].store.query("SELECT usage_by, text_in, cost FROM calls")
    assert row["usage_by"] == "page" and row["text_in"] < 10**8 and row["cost"] > 0


class MovingClock:
    """The app's clock (``create_app(clock=...)``): reads ``at`` at first, ticks on, and the test moves it."""

    def __init__(self, at: datetime) -> None:
        self.offset = at - datetime.now(UTC)
        self.reads = 0

    def __call__(self) -> datetime:
        self.reads += 1
        return datetime.now(UTC) + self.offset

    def move(self, by: timedelta) -> None:
        self.offset += by


AUCKLAND = ZoneInfo("Pacific/Auckland")
ALWAYS_OPEN = parse_hours({"mon-sun": "00:00-24:00", "timezone": "Pacific/Auckland"})


async def test_the_day_s_spend_starts_again_at_the_venue_s_midnight_by_the_app_s_clock(
    make_client: Any, settings: Settings
) -> None:
    settings.data_dir.mkdir(mode=0o700)
    clock = MovingClock(datetime(2027, 3, 10, 23, 58, tzinfo=AUCKLAND))  # late on the 10th at the venue
    cost = spend_earlier(dataclasses.replace(settings, hours=ALWAYS_OPEN), clock)
    client = await make_client(hours=ALWAYS_OPEN, budget_per_day=cost / 2, clock=clock)
    assert (await post_call(client)).status == 402  # the 10th's budget is spent
    clock.move(timedelta(minutes=3))  # 00:01 on the 11th at the venue (still the 10th in UTC)
    assert (await post_call(client)).status == 201
    today = client.server.app[LEDGER].today()
    assert (today.calls, today.cost, client.server.app[LEDGER].day()) == (1, 0.0, "2027-03-11")


def corrupt(path: Any) -> None:
    """Garbage in the call record's file under a running server (its pages moved out of the WAL
    first, and the shared index spoilt so the server's connection reads the file again)."""
    with contextlib.closing(sqlite3.connect(path)) as other:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for name, garbage in ((path.name, b"garbage!" * 2048), (path.name + "-shm", b"\xff" * 136)):
        with open(path.with_name(name), "r+b") as file:
            file.write(garbage)


async def test_a_call_record_that_turns_unreadable_stops_no_call_and_not_the_budget(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.test_metrics import scrape, value

    clock = MovingClock(datetime(2027, 3, 10, 12, 0, tzinfo=UTC))
    client = await make_client(budget_per_day=1.0, budget_timing=QUICK, clock=clock)
    book = client.server.app[LEDGER]
    corrupt(book.store.path)
    clock.move(timedelta(days=1))  # a new day: its sums are read from the file
    response = await post_call(client)  # the budget looks (and cannot read): the call is made
    assert response.status == 201
    assert (await client.delete(response.headers["Location"])).status == 200  # every observer told of its end
    assert value(await scrape(client), "voicekiosk_calls_ended_total", reason="page") == 1
    assert book.today().calls == 1  # the last sums stand, and what ended since is added to them
    read = clock.reads  # with no request under way, only the budget's looks read the clock
    await wait_for(lambda: clock.reads >= read + 3, what="the budget looking on")
    assert pending("Budget._watch") == 1
    assert caplog.text.count("today's spend cannot be read") == 1  # said once, however often tried
    assert "file is not a database" in caplog.text and "the look at today's spend failed" not in caplog.text


def pending(qualname: str, **where: Any) -> int:
    """Tasks running ``qualname`` now (whose arguments match ``where``)."""
    count = 0
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if getattr(coro, "__qualname__", "") == qualname and frame is not None:
            count += all(frame.f_locals.get(name) == want for name, want in where.items())
    return count


async def test_a_call_s_limit_timers_end_with_it(make_client: Any) -> None:
    client = await make_client(budget_per_day=5.0)
    for _ in range(5):
        response = await post_call(client)
        assert response.status == 201
        assert pending("Budget._wrap_up_after") == 1 and pending("CallRegistry._hang_up_later", reason="limit") == 1
        assert (await client.delete(response.headers["Location"])).status == 200
    await wait_for(lambda: pending("Budget._wrap_up_after") == 0, what="the timers called off")
    assert pending("CallRegistry._hang_up_later", reason="limit") == 0
