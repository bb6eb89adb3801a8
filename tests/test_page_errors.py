"""The page in a real Chromium when things are wrong: each failure has its own human message."""

from __future__ import annotations

import pytest

from tests.browser import chromium_args, open_page, problem_title, wait_state
from tests.helpers import wait_for
from voicekiosk.web.appkeys import CALLS

pytestmark = pytest.mark.browser


async def test_no_api_key_is_explained_and_retried(chromium, serve_app):
    server = await serve_app(api_key=None)
    context = await chromium.new_context()
    page, watch = await open_page(context, str(server.make_url("/?autostart")))
    await wait_state(page, "reconnecting")
    assert await problem_title(page) == "The server has no OpenAI API key."
    assert "OPENAI_API_KEY" in await page.text_content("#problem-help")
    assert await page.is_visible("#retry")
    assert watch.foreign_urls() == []
    # 503s from our own API show as console errors in Chromium ("Failed to load resource");
    # nothing else may.
    assert [e for e in watch.errors if "503" not in e] == []
    await context.close()


async def test_insecure_context_explains_https_and_links_the_setup_page(chromium, serve_app):
    server = await serve_app(san=("voicekiosk.test",))
    context = await chromium.new_context()
    # Plain http to a name that is not localhost: not a secure context, as on a phone over the LAN.
    url = f"http://voicekiosk.test:{server.port}/"
    page, watch = await open_page(context, url)
    assert await page.evaluate("window.isSecureContext") is False
    await page.click("#attract")  # the attract screen: tap anywhere
    await wait_state(page, "error")
    assert await problem_title(page) == "This page needs HTTPS for the microphone."
    assert watch.errors == []
    await context.close()


async def test_start_is_keyboard_accessible(chromium, serve_app):
    server = await serve_app(api_key=None)
    context = await chromium.new_context()
    page, _ = await open_page(context, str(server.make_url("/")))
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "attract"  # what starts a call while idle
    await page.keyboard.press("Enter")
    await wait_state(page, "reconnecting", "connecting", "starting")
    await wait_for(lambda: problem_title(page), what="a problem shown")
    await context.close()


@pytest.mark.parametrize(
    ("flags", "title"),
    [
        # A microphone exists but the permission prompt is refused (nobody grants it).
        (["--use-fake-device-for-media-stream"], "Microphone access was blocked."),
        # Permission is granted but there is no microphone at all.
        (["--use-fake-ui-for-media-stream"], "No microphone found."),
    ],
    ids=["denied", "no-mic"],
)
async def test_microphone_problems_have_their_own_message(launch_chromium, serve_app, flags, title):
    server = await serve_app()
    browser = await launch_chromium(chromium_args() + flags)
    context = await browser.new_context()
    page, watch = await open_page(context, str(server.make_url("/")))
    await wait_for(lambda: page.evaluate("Boolean(window.voicekiosk)"), what="the page code")
    await page.click("#attract")
    await wait_state(page, "error")
    assert await problem_title(page) == title
    assert await page.is_visible("#retry")
    # The call that was started alongside the prompt is hung up: nothing left to pay for.
    await wait_for(lambda: len(server.app[CALLS]) == 0, what="the call hung up")
    assert watch.errors == []
    await context.close()
