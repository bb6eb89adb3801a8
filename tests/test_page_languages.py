"""Language buttons in a real Chromium, over real TLS, against the fake on both engines: a tap
switches the page's words at once and tells the running session (Realtime: a transcription hint
and a system message; Live: an instructions append), with no new connection; a language picked
before the call is told to it once it is up. Everything on loopback; it waits on what the page
shows and what the fake was sent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import ARTIFACTS, open_page, wait_state
from tests.helpers import REAL_KEY, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.fake.agent import AgentAnswerer
from voicekiosk.fake.live_agent import LiveAnswerer
from voicekiosk.fake.voice import Script
from voicekiosk.languages import table
from voicekiosk.tools.prompt import chosen_language

pytestmark = pytest.mark.browser

HEARD = ["Hello there, I would like to visit the museum today.", "Sorry, what time do you open?"]
LANGUAGES = ("en", "fr", "de", "es")
CALL_UP = ("listening", "user-speaking", "thinking", "agent-speaking")
GREETING = "Welcome the visitor to the museum in one short sentence."
SHOWN = "[document.documentElement.lang, main.dataset.state, label.textContent, start.textContent]"


@pytest.fixture
def answerer() -> AgentAnswerer:
    return AgentAnswerer(loopback_only=True, script=Script(user_transcripts=HEARD))


@pytest.fixture
def live() -> LiveAnswerer:
    return LiveAnswerer(script=Script(user_transcripts=HEARD))


@pytest.fixture
def fake(answerer: AgentAnswerer, live: LiveAnswerer) -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY, answerer=answerer, live=live)


async def shows(page: Any) -> tuple[str, str, str, str]:
    """The page's language, state, the state's words and the Start button's words."""
    script = f"""() => {{
        const main = document.querySelector("main"), label = document.getElementById("state-label");
        const start = document.getElementById("start");
        return {SHOWN};
    }}"""
    return tuple(await page.evaluate(script))  # type: ignore[return-value]


async def speaks(page: Any, code: str) -> bool:
    """The page is in ``code``: <html lang>, the state's name and the Start button in its words."""
    words = table(code)
    lang, state, label, start = await shows(page)
    return lang == code and label == words[f"state.{state}"] and start in (words["button.start"], words["button.stop"])


async def pressed(page: Any) -> list[str]:
    return await page.eval_on_selector_all("[data-language][aria-pressed=true]", "(b) => b.map((x) => x.lang)")


def sent(call: Any, kind: str) -> list[dict[str, Any]]:
    """The events of type ``kind`` the page sent on the call's channel, in order."""
    return [event for way, event in call.commands if way == "channel" and event["type"] == kind]


def told(code: str) -> str:
    return chosen_language(code)


def rules(call: Any) -> list[tuple[str, str]]:
    """The instructions appends that reached a Live session: which way ("channel", "sideband"), what."""
    return [(way, e["content"]) for way, e in call.commands if e["type"] == "session.instructions.append"]


async def test_realtime_a_tap_switches_the_words_and_updates_the_session_without_reconnecting(
    chromium, serve_app, answerer, fake
):
    server = await serve_app(https=True, languages=LANGUAGES)
    context = await chromium.new_context(viewport={"width": 390, "height": 844})
    page, watch = await open_page(context, str(server.make_url("/?autostart")))
    await wait_state(page, *CALL_UP)
    [call] = answerer.calls.values()
    assert await speaks(page, "en") and await pressed(page) == ["en"]
    names = await page.eval_on_selector_all("[data-language]", "(b) => b.map((x) => x.textContent)")
    assert names == ["English", "Français", "Deutsch", "Español"]
    sizes = await page.eval_on_selector_all("[data-language]", "(b) => b.map((x) => x.getBoundingClientRect())")
    assert all(box["height"] >= 48 and box["width"] >= 48 for box in sizes)

    await page.click("button[data-language=fr]")
    await wait_for(lambda: speaks(page, "fr"), what="the page in French")
    assert (await shows(page))[3] == "Arrêter" and await pressed(page) == ["fr"]
    assert await page.text_content("#mute") == table("fr")["button.mute"]
    # The session hears French from now on, and the agent is told to speak it.
    await wait_for(lambda: sent(call, "conversation.item.create"), what="the system message")
    [update] = sent(call, "session.update")
    hint = {"model": "gpt-4o-mini-transcribe", "language": "fr"}
    assert update["session"] == {"type": "realtime", "audio": {"input": {"transcription": hint}}}
    assert call.session["audio"]["input"]["transcription"] == hint  # accepted, strictly checked
    [message] = sent(call, "conversation.item.create")
    text = [{"type": "input_text", "text": told("fr")}]
    assert message["item"] == {"type": "message", "role": "system", "content": text}
    assert ("out", "error") not in [(way, kind) for _, way, kind in call.events]

    # The captions' labels follow (CSS content), once the visitor's words are there.
    await wait_for(lambda: page.locator(".line.user").count(), timeout=20, what="your caption")
    label = await page.eval_on_selector(".line.user", "(line) => getComputedStyle(line, '::before').content")
    assert "Vous :" in label

    await page.click("button[data-language=de]")
    await wait_for(lambda: speaks(page, "de"), what="the page in German")
    await wait_for(lambda: len(sent(call, "conversation.item.create")) == 2, what="the second choice")
    assert sent(call, "session.update")[-1]["session"]["audio"]["input"]["transcription"]["language"] == "de"
    assert sent(call, "conversation.item.create")[-1]["item"]["content"][0]["text"] == told("de")
    # Every layout keeps the buttons on screen, nothing wider than it (screenshots as artifacts).
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((390, 844), (800, 480), (1280, 800), (1080, 1920)):
        await page.set_viewport_size({"width": width, "height": height})
        buttons = "[...document.querySelectorAll('[data-language]')]"
        fits = f"{buttons}.every((b) => b.getBoundingClientRect().bottom <= innerHeight)"
        measured = f"[document.documentElement.scrollWidth, innerWidth, {fits}]"
        wide, width_now, on_screen = await page.evaluate(measured)
        await page.screenshot(path=ARTIFACTS / f"languages-{width}x{height}.png")
        assert wide <= width_now and on_screen, (width, height, wide, on_screen)
    # Nothing restarted: one peer connection, one call made upstream.
    assert await page.evaluate("window.__probe.pcs.length") == 1
    assert len(fake.recorded("calls")) == 1 and len(answerer.calls) == 1
    assert watch.errors == []
    await context.close()


async def test_live_a_language_picked_before_the_call_is_told_then_a_tap_appends_another(
    chromium, serve_app, live, fake
):
    """The page names the language to the server, which appends its own rule over the sideband (the
    page's channel may not append rules): before the greeting for a pick made before the call."""
    server = await serve_app(https=True, engine="live", model="gpt-live-1.1", greeting=GREETING, languages=LANGUAGES)
    context = await chromium.new_context()
    page, watch = await open_page(context, str(server.make_url("/")))
    await wait_for(lambda: page.evaluate("Boolean(window.voicekiosk)"), what="the page's code")
    await page.click("button[data-language=es]")
    await wait_for(lambda: speaks(page, "es"), what="the page in Spanish")
    assert (await shows(page))[1:] == ("idle", "Listo", "Empezar")
    assert await page.text_content("#hint") == table("es")["hint.start"]

    await page.click("#attract")  # a visitor picks a language on the attract screen, then taps it
    await wait_state(page, *CALL_UP)
    [session] = live.calls.values()
    await wait_for(lambda: sent(session, "session.commentary.append"), what="the greeting")
    # The server's rule first, on its attach, so the greeting is in Spanish; after session.started.
    assert rules(session) == [("sideband", told("es"))]
    ways = [(way, event["type"]) for way, event in session.commands]
    greeting = ways.index(("channel", "session.commentary.append"))
    assert ways.index(("sideband", "session.instructions.append")) < greeting
    assert len(fake.recorded("live_attach")) == 1
    assert await speaks(page, "es") and (await shows(page))[3] == "Detener"

    await page.click("button[data-language=fr]")
    await wait_for(lambda: speaks(page, "fr"), what="the page in French")
    await wait_for(lambda: len(rules(session)) == 2, what="the second rule")
    assert rules(session) == [("sideband", told("es")), ("sideband", told("fr"))]
    await wait_for(
        lambda: [kind for _, way, kind in session.events if way == "out"].count("session.instructions.appended") == 2,
        what="both rules acknowledged",
    )
    assert ("out", "error") not in [(way, kind) for _, way, kind in session.events]
    # Nothing restarted, the page's channel never appended a rule, and the session goes on.
    assert await page.evaluate("window.__probe.pcs.length") == 1 and len(live.calls) == 1
    assert sent(session, "session.instructions.append") == [] and not session.closed
    assert await wait_state(page, *CALL_UP)
    assert watch.errors == []
    await context.close()
