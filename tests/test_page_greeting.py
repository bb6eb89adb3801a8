"""The greeting on the Realtime engine, in a real Chromium over real TLS against the fake's peer:
a visitor's tap, and a voice that wakes a paused kiosk, each open the call with the greeting as a
system message and a plain ``response.create``, the first things on the channel and before anything the
visitor says; the fake speaks it and the page captions it. A kiosk that starts by itself, and a
reconnect, are not greeted.

The microphone plays tests/artifacts/mic.wav (see test_page.py): 1.5 s of silence, two sentences,
then 4.5 s of silence, looping from when the page asks for it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import open_page, wait_state
from tests.helpers import REAL_KEY, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.call import AgentCall
from voicekiosk.fake.voice import Script

pytestmark = pytest.mark.browser

GREETING = "Welcome the visitor to the museum in one short sentence."
WELCOME = Script().replies[0][0]  # what the fake says first: here, the greeting
CALL_UP = ("listening", "user-speaking", "thinking", "agent-speaking")
VISITOR = ("input_audio_buffer.speech_started", "conversation.item.input_audio_transcription.completed")


@pytest.fixture
def answerer() -> AgentAnswerer:
    return AgentAnswerer(loopback_only=True, script=Script(user_transcripts=["Hello there."]))


@pytest.fixture
def fake(answerer: AgentAnswerer) -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY, answerer=answerer)


@pytest.fixture
def serve_page(serve_app: Any) -> Any:
    """Our app on HTTPS with the greeting (settings overridable): the page URL (no autostart)."""

    async def start(path: str = "/", **overrides: Any) -> str:
        server = await serve_app(https=True, **({"greeting": GREETING} | overrides))
        return str(server.make_url(path))

    return start


def channel(call: AgentCall) -> list[dict[str, Any]]:
    """What the page sent on ``call``'s data channel, in order."""
    return [event for way, event in call.commands if way == "channel"]


def greeted(call: AgentCall) -> bool:
    """The page's first words on the channel asked for the greeting: a system message, then a plain
    response (its own instructions would replace the session's: the persona, the tools' rules)."""
    return channel(call)[:2] == [system_message(GREETING), {"type": "response.create"}]


def system_message(text: str) -> dict[str, Any]:
    """A system message item, as the page sends one."""
    item = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": text}]}
    return {"type": "conversation.item.create", "item": item}


def first_of(call: AgentCall, kinds: tuple[str, ...]) -> int:
    """Where the first of ``kinds`` the fake sent is in its log (its length if none was)."""
    log = [(way, kind) for _, way, kind in call.events]
    return next((i for i, (way, kind) in enumerate(log) if way == "out" and kind in kinds), len(log))


async def agent_lines(page: Any) -> list[str]:
    return list(
        await page.evaluate("[...document.querySelectorAll('.line.agent')].map((l) => l.firstChild?.nodeValue || '')")
    )


async def test_a_tap_is_greeted_before_the_visitor_speaks(chromium, serve_page, answerer) -> None:
    context = await chromium.new_context()
    page, watch = await open_page(context, await serve_page())
    await wait_for(lambda: page.evaluate("Boolean(window.voicekiosk)"), what="the page's code")
    await page.click("#attract")  # a visitor taps the waiting screen
    await wait_state(page, *CALL_UP)
    [call] = answerer.calls.values()
    await wait_for(lambda: greeted(call), what="the greeting request")
    log = [(way, kind) for _, way, kind in call.events]
    asked = log.index(("in", "response.create"))
    assert asked < first_of(call, VISITOR)  # before any speech of the visitor's (1.5 s of silence first)
    assert log.index(("out", "output_audio_buffer.started")) > asked  # and it speaks it
    # Its caption: whole, or cut where the visitor spoke over it (1.5 s after the tap).
    await wait_for(lambda: _new_line(page, 0), timeout=10, what="the greeting's caption")
    assert WELCOME.startswith((await agent_lines(page))[0].strip())
    assert ("out", "error") not in log
    assert watch.errors == []
    await context.close()


async def test_a_voice_that_wakes_a_paused_kiosk_is_greeted_an_autostart_is_not(chromium, serve_page, answerer):
    context = await chromium.new_context()
    page, watch = await open_page(context, await serve_page("/?autostart", idle_timeout=2))
    await wait_state(page, "paused", timeout=30)  # the fake mic falls silent for 4.5 s: the idle hang-up
    first = next(iter(answerer.calls.values()))
    assert not [e for e in channel(first) if e["type"] == "response.create"]  # nobody tapped: nobody greeted
    lines_before = len(await agent_lines(page))
    # Then the mic speaks again: the page connects by itself, and the agent greets first.
    await wait_for(lambda: len(answerer.calls) >= 2, timeout=25, what="the woken call")
    woken = list(answerer.calls.values())[1]
    await wait_for(lambda: greeted(woken), what="the greeting request")
    log = [(way, kind) for _, way, kind in woken.events]
    transcript = first_of(woken, ("conversation.item.input_audio_transcription.completed",))
    assert log.index(("in", "response.create")) < transcript  # asked before anything the visitor said was heard
    # Its caption: whole, or cut where the visitor (still talking) spoke over it.
    await wait_for(lambda: _new_line(page, lines_before), timeout=10, what="the greeting's caption")
    line = (await agent_lines(page))[lines_before].strip()
    assert WELCOME.startswith(line)
    assert watch.errors == []
    await context.close()


async def _new_line(page: Any, before: int) -> bool:
    lines = await agent_lines(page)
    return len(lines) > before and bool(lines[before].strip())
