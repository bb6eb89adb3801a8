"""The status page in a real Chromium beside a talking kiosk page: it shows the live call as the
page goes, and its Hang up button ends the call upstream; the kiosk page rests instead of calling
again."""

from __future__ import annotations

import pytest

from tests.browser import ARTIFACTS, open_page, state_count, wait_state
from tests.helpers import REAL_KEY, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.web.appkeys import ADMIN, CALLS, METRICS

pytestmark = pytest.mark.browser

TALKING = ("listening", "user-speaking", "thinking", "agent-speaking")


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY, answerer=AgentAnswerer(loopback_only=True, script=Script()))


async def test_the_status_page_shows_the_live_call_and_hangs_it_up(chromium, serve_app, fake):
    server = await serve_app(https=True)
    app = server.app
    context = await chromium.new_context(viewport={"width": 1280, "height": 800})
    kiosk, kiosk_watch = await open_page(context, str(server.make_url("/?autostart")))
    await wait_state(kiosk, *TALKING)
    (record,) = app[CALLS].calls()

    admin, admin_watch = await open_page(context, str(server.make_url("/admin")), probe=False)
    row = admin.locator("#calls tbody tr", has_text=record.call_id)
    await row.wait_for(timeout=10_000)
    # The state column follows the kiosk page (it reports over its events socket; the page polls).
    await wait_for(lambda: _cell(row, 4), what="the page's state in the row")
    assert await _cell(row, 4) in TALKING
    assert await _cell(row, 1) == "127.0.0.1" and await _cell(row, 2) == "realtime"
    ARTIFACTS.mkdir(exist_ok=True)
    await admin.screenshot(path=ARTIFACTS / "admin-live-call.png", full_page=True)

    before = await state_count(kiosk)
    await row.get_by_role("button", name="Hang up").click()
    await wait_for(lambda: len(fake.recorded("hangup")) == 1, what="the hang-up upstream")
    assert record.call_id in fake.recorded("hangup")[0].path
    await wait_state(kiosk, "paused", since=before, timeout=10)  # told first: it rests, no reconnecting
    await admin.locator("#calls tbody tr.empty").wait_for(timeout=10_000)
    ended = app[METRICS].counts(app[METRICS].ended)
    assert ended[("admin",)] == 1 and ended[("page",)] == 0
    assert admin_watch.errors == [] and admin_watch.foreign_urls() == []
    # The kiosk's own late hang-up of the call the admin ended finds it gone (404): nothing else.
    assert all("404" in error for error in kiosk_watch.errors), kiosk_watch.errors
    await context.close()


async def test_an_open_status_page_hangs_up_with_a_restarted_servers_form_token(chromium, serve_app, fake):
    """A restarted server has a new form token: the page opened before it still hangs up (it takes
    the latest from /admin/status), with no 403 and no reload."""
    server = await serve_app(https=True)
    context = await chromium.new_context()
    kiosk, _ = await open_page(context, str(server.make_url("/?autostart")))
    await wait_state(kiosk, *TALKING)
    admin, admin_watch = await open_page(context, str(server.make_url("/admin")), probe=False)
    await admin.get_by_role("button", name="Hang up").wait_for(timeout=10_000)
    server.app[ADMIN].form_token = "a-restarted-servers-token"  # what a new process would have made
    await admin.get_by_role("button", name="Hang up").click()
    await wait_for(lambda: len(fake.recorded("hangup")) == 1, what="the hang-up upstream")
    await admin.locator("#calls tbody tr.empty").wait_for(timeout=10_000)
    assert await admin.locator("#notice").is_hidden()
    assert [e for e in admin_watch.errors if "403" not in e] == []  # at most the first, stale POST
    await context.close()


async def test_a_hang_up_openai_refuses_is_said_on_the_status_page(chromium, serve_app, fake):
    server = await serve_app(https=True)
    context = await chromium.new_context()
    kiosk, _ = await open_page(context, str(server.make_url("/?autostart")))
    await wait_state(kiosk, *TALKING)
    admin, admin_watch = await open_page(context, str(server.make_url("/admin")), probe=False)
    fake.add_fault("hangup", status=500, times=1)
    await admin.get_by_role("button", name="Hang up").click()
    notice = admin.locator("#notice")
    await notice.wait_for(state="visible", timeout=10_000)
    assert await notice.text_content() == "Hang-up failed: OpenAI had an error. Try again shortly."
    assert [e for e in admin_watch.errors if "502" not in e] == []  # the failed POST itself is logged
    await context.close()


async def _cell(row, index: int) -> str:
    return str(await row.locator("td").nth(index).text_content() or "").strip()
