"""Tools as the visitor sees them, in a real Chromium over real TLS: the server runs them over the
call's sideband (Realtime, ``--sdp server``) and tells the page (``/api/events``) what to show.

The microphone plays tests/artifacts/mic.wav (see test_page.py); the fake agent calls the tool on
its second answer (turn 1: after "Sorry, what time do you open?"), in the mic's long silence.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.browser import ARTIFACTS, open_page, state_count, wait_state
from tests.desk import PARAMETERS, serve_desk
from tests.helpers import REAL_KEY, png, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.tools.spec import Secret, ToolsConfig, WebhookSpec

pytestmark = pytest.mark.browser

HEARD = ["Hello there, I would like to visit the museum today.", "Sorry, what time do you open?"]
KIOSK = {"width": 1280, "height": 800}
SECRET = "desk-secret-page-5e2b"
HEADER = "X-Desk-Token"
ARGUMENTS = {"time": "15:00", "people": 2}
FAST = (0.05, 0.1, 0.2)
LINK = "https://example.org/tours?from=kiosk"


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI(
        api_key=REAL_KEY, answerer=AgentAnswerer(loopback_only=True, script=Script(user_transcripts=HEARD))
    )


@pytest.fixture
def serve_tools(serve_app, fake: FakeOpenAI):
    """Our app with ``tools`` over HTTPS, its fake agent calling ``tool`` on turn 1; the page URL."""

    async def start(tools: ToolsConfig, tool: str, arguments: dict[str, Any]) -> str:
        fake.answerer.script.tool_calls[1] = (tool, arguments)  # type: ignore[attr-defined]
        server = await serve_app(https=True, tools=tools, sideband_backoff=FAST)
        return str(server.make_url("/?autostart"))

    return start


class Seen:
    """Everything the browser received: data-channel messages (the probe), WebSocket frames both
    ways, and every HTTP response body. Made before the page opens, so nothing goes unseen
    (``watch`` names the page whose probe to read)."""

    def __init__(self, context: Any) -> None:
        self.frames: list[str] = []
        self.responses: list[Any] = []
        self.page: Any = None
        context.on("response", lambda response: self.responses.append(response))
        context.on("page", lambda page: page.on("websocket", self._socket))

    def watch(self, page: Any) -> None:
        self.page = page

    def _socket(self, ws: Any) -> None:
        for kind in ("framereceived", "framesent"):
            ws.on(kind, lambda payload: self.frames.append(payload if isinstance(payload, str) else payload.decode()))

    async def text(self) -> str:
        bodies = []
        for response in self.responses:
            try:
                bodies.append((await response.body()).decode("utf-8", "replace"))
            except Exception:  # a redirect or an upgrade has no body to read
                continue
        raw = await self.page.evaluate("window.__probe.raw")
        assert raw and bodies and self.frames  # something of each kind was seen
        return "\n".join([*raw, *self.frames, *bodies])


async def working_on_it(page: Any) -> bool:
    """The page shows the tool state now, in words."""
    label = "[document.querySelector('main').dataset.state, document.getElementById('state-label').textContent]"
    return bool(await page.evaluate(label) == ["working", "Working on it…"])


async def agent_said(page: Any, words: str) -> bool:
    return any(words in line for line in await page.locator(".line.agent").all_text_contents())


async def test_a_webhook_runs_with_working_on_it_and_its_result_in_the_caption_and_no_secret_in_the_page(
    chromium, serve_tools, aiohttp_server, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger="voicekiosk")
    desk, desk_server = await serve_desk(aiohttp_server, HEADER)
    desk.delay = 1.5  # long enough to see "working on it"
    monkeypatch.setenv("DESK_TOKEN", SECRET)
    hook = WebhookSpec(
        name="book_tour",
        description="Book a guided tour for a visitor.",
        parameters=PARAMETERS,
        url=str(desk_server.make_url("/api/tours")),
        headers=((HEADER, Secret("DESK_TOKEN")),),
        timeout=5,
    )
    url = await serve_tools(ToolsConfig(webhooks=(hook,)), "book_tour", ARGUMENTS)
    context = await chromium.new_context()
    seen = Seen(context)
    page, watch = await open_page(context, url)
    seen.watch(page)
    await wait_state(page, "listening", "user-speaking", "thinking")
    since = await state_count(page)

    await wait_for(lambda: working_on_it(page), timeout=25, what="'Working on it…' while the webhook runs")
    await wait_for(lambda: agent_said(page, '"ref":"T-15:00"'), timeout=20, what="the result in the caption")
    assert desk.received == [(ARGUMENTS, SECRET)]
    states = await page.evaluate(f"window.__probe.states.slice({since})")
    after = states[states.index("working") :]
    after = after[next(i for i, s in enumerate(after) if s != "working") :]
    assert after[0] == "thinking" and "agent-speaking" in after and "working" not in after, states

    everything = await seen.text()
    for secret in (SECRET, HEADER, "DESK_TOKEN", str(desk_server.make_url("/api/tours")), "/api/tours"):
        assert secret not in everything, secret
    assert "book_tour" in everything  # the declaration (name, schema) is all the page may know
    assert watch.errors == [] and watch.foreign_urls() == []
    await context.close()


async def test_show_puts_an_image_a_card_and_a_qr_code_beside_the_captions_until_the_next_turn(
    chromium, serve_tools, tmp_path: Path
):
    folder = tmp_path / "desk-knowledge"
    folder.mkdir()
    (folder / "map.png").write_bytes(png(48, 32))
    shown = {"image": "map.png", "title": "Room 204", "text": "Second floor\nLeft of the lift", "link": LINK}
    url = await serve_tools(ToolsConfig(knowledge=folder, builtins=frozenset({"show"})), "show", shown)
    context = await chromium.new_context(viewport=KIOSK)
    page, watch = await open_page(context, url)

    await page.wait_for_selector("#shown:not([hidden]) img.shown-image", timeout=25_000)
    loaded = "(img) => img.complete && img.naturalWidth"
    await wait_for(lambda: page.eval_on_selector("img.shown-image", loaded), what="the image loaded")
    assert await page.eval_on_selector("img.shown-image", "(img) => [img.naturalWidth, img.naturalHeight]") == [48, 32]
    assert await page.eval_on_selector(".shown-qr img", loaded) > 0  # the QR code's SVG
    assert await page.text_content(".shown-title") == "Room 204"
    assert await page.text_content(".shown-text") == "Second floor\nLeft of the lift"
    assert await page.text_content(".shown-qr figcaption") == LINK
    sources = await page.eval_on_selector_all("#shown img", "(imgs) => imgs.map((i) => i.src.slice(0, 22))")
    assert sources == ["data:image/png;base64,", "data:image/svg+xml;cha"]
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "shown-kiosk.png")
    await wait_for(lambda: agent_said(page, "On the screen now"), timeout=15, what="the agent's answer")

    # The conversation moves on (the mic speaks again after the answer): the panel is cleared.
    await page.wait_for_selector("#shown", state="hidden", timeout=25_000)
    assert await page.eval_on_selector("#shown", "(s) => s.childElementCount") == 0
    assert watch.errors == [] and watch.foreign_urls() == []
    await context.close()


async def test_end_conversation_ends_the_call_upstream_and_the_page_goes_idle(chromium, serve_tools, fake, caplog):
    caplog.set_level(logging.INFO, logger="voicekiosk")
    tools = ToolsConfig(builtins=frozenset({"end_conversation"}))
    url = await serve_tools(tools, "end_conversation", {})
    context = await chromium.new_context()
    page, watch = await open_page(context, url)
    await wait_state(page, "listening", "user-speaking", "thinking")
    since = await state_count(page)

    await wait_state(page, "paused", since=since, timeout=30)
    assert "goodbye" in await page.text_content("#state-detail")
    await wait_for(lambda: len(fake.recorded("hangup")) == 1, what="the call hung up upstream")
    assert await agent_said(page, "Say a short goodbye")  # the goodbye was heard before the end
    states = await page.evaluate(f"window.__probe.states.slice({since})")
    assert "agent-speaking" in states and "reconnecting" not in states, states
    assert await page.evaluate("window.__probe.pcs.length") == 1  # no new call by itself
    # The page let the call go itself (DELETE), within the server's bound.
    assert "by 127.0.0.1" in caplog.text and "after the agent ended the conversation" not in caplog.text
    assert watch.errors == []
    await context.close()
