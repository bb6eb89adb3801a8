"""Shared fixtures: a fake OpenAI on loopback, settings pointing at it, and a client of our app."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.desk import HEADER, SECRET, Desk, book_tour, serve_desk
from tests.helpers import REAL_KEY, wait_for
from voicekiosk.fake import FakeOpenAI
from voicekiosk.settings import Settings
from voicekiosk.tools.spec import ToolsConfig

if TYPE_CHECKING:  # aiortc is imported only by the tests that make a page stand-in
    from tests.rtc_client import Client
from voicekiosk.web.app import create_app

pytest_plugins = ["tests.audio", "tests.certs"]  # mic_wav; data_dir, store, tls_settings, no_lan


@pytest.fixture
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fails a test that leaves asyncio tasks running (``usefixtures`` it in a module)."""
    yield
    current = asyncio.current_task()
    try:
        await wait_for(lambda: not asyncio.all_tasks() - {current}, timeout=2, what="the test's tasks to end")
    except AssertionError:
        raise AssertionError(f"tasks left running: {asyncio.all_tasks() - {current}}") from None


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI(api_key=REAL_KEY)


@pytest.fixture
async def fake_server(aiohttp_server: Callable[..., Awaitable[TestServer]], fake: FakeOpenAI) -> TestServer:
    return await aiohttp_server(fake.app(), host="127.0.0.1")


@pytest.fixture
def settings(fake_server: TestServer, tmp_path: Path) -> Settings:
    return Settings(
        openai_base_url=str(fake_server.make_url("/v1")),
        api_key=REAL_KEY,
        data_dir=tmp_path / "data",
        upstream_timeout=2.0,
        tls=False,
        host="127.0.0.1",
    )


ClientFactory = Callable[..., Awaitable[TestClient]]
ServerFactory = Callable[..., Awaitable[TestServer]]
# create_app's own keywords; the rest are Settings
APP_OPTIONS = ("transport", "orphan_grace", "ca", "sideband_backoff", "clock", "budget_timing")


def build_app(settings: Settings, overrides: dict[str, Any]) -> web.Application:
    """``create_app`` with ``settings`` overridden by keyword (``APP_OPTIONS`` go to it as they are)."""
    options = {name: overrides.pop(name) for name in APP_OPTIONS if name in overrides}
    return create_app(dataclasses.replace(settings, **overrides), **options)


@pytest.fixture
def make_client(aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings) -> ClientFactory:
    """A test client of our app: ``make_client(sdp="browser", orphan_grace=0.2, ...)``."""

    async def make(**overrides: Any) -> TestClient:
        return await aiohttp_client(build_app(settings, overrides))

    return make


@pytest.fixture
def serve_app(
    aiohttp_server: Callable[..., Awaitable[TestServer]], settings: Settings, request: pytest.FixtureRequest
) -> ServerFactory:
    """Our app on a real loopback port, for a browser: ``await serve_app(https=True, idle_timeout=2)``.

    ``https``: over TLS from a fresh local CA (``https_settings``, which ``chromium`` trusts).
    Other keywords as ``make_client``. Stopped at the end of the test.
    """

    async def serve(*, https: bool = False, **overrides: Any) -> TestServer:
        base, context = settings, None
        if https:
            tls: Https = request.getfixturevalue("https_settings")
            base, context = tls.settings, tls.context
        return await aiohttp_server(build_app(base, overrides), ssl=context)

    return serve


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient:
    return await make_client()


TEST_NAMES = {"voicekiosk.test": "127.0.0.1"}  # a non-localhost name: pages there are not secure contexts


@dataclasses.dataclass(frozen=True)
class Https:
    settings: Settings
    context: ssl.SSLContext
    spki: str  # what Chromium is told to trust, and nothing else


@pytest.fixture
def https_settings(settings: Settings) -> Https:
    """Settings for serving over real TLS from a fresh local CA in this test's data dir."""
    from voicekiosk.tls.context import prepare, server_context

    tls = dataclasses.replace(settings, tls=True, rate=1000, max_calls=20)
    files = prepare(tls)
    return Https(tls, server_context(files), files.spki)


async def close_browser(browser) -> None:
    # Contexts first: closing a browser with a page still open can stall for half a minute.
    for context in browser.contexts:
        await context.close()
    await browser.close()


@pytest.fixture
async def chromium(mic_wav: Path, https_settings: Https):
    """A headless Debian Chromium whose microphone plays ``mic_wav``; loopback only."""
    from playwright.async_api import async_playwright

    from tests.browser import CHROMIUM, chromium_args, require_isolated_browser

    require_isolated_browser()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=False,
            args=chromium_args(mic_wav=mic_wav, spki=https_settings.spki, resolve=TEST_NAMES),
        )
        try:
            yield browser
        finally:
            await close_browser(browser)


@pytest.fixture
async def launch_chromium():
    """Launch Chromium with flags (and, if given, environment) of the test's choosing (all closed at the end)."""
    from playwright.async_api import async_playwright

    from tests.browser import CHROMIUM, require_isolated_browser

    require_isolated_browser()
    async with async_playwright() as playwright:
        browsers = []

        async def launch(args: list[str], env: dict[str, str | float | bool] | None = None):
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=False, args=args, env=env
            )
            browsers.append(browser)
            return browser

        try:
            yield launch
        finally:
            for browser in browsers:
                await close_browser(browser)


# -- a call with tools: a real webhook with a secret header, and an aiortc page stand-in ------


@pytest.fixture
async def desk(aiohttp_server: Any) -> tuple[Desk, TestServer]:
    """The webhook ``book_tour`` posts to (a real aiohttp server on loopback)."""
    return await serve_desk(aiohttp_server, HEADER)


@pytest.fixture
def tools(desk: tuple[Desk, TestServer], monkeypatch: pytest.MonkeyPatch) -> ToolsConfig:
    """``book_tour`` on ``desk``, its secret header read from the environment."""
    monkeypatch.setenv("DESK_TOKEN", SECRET)
    return ToolsConfig(webhooks=(book_tour(desk[1]),))


@pytest.fixture
async def page() -> AsyncIterator[Client]:
    """A page stand-in (aiortc) that joins through ``/api/call``; closed after the test."""
    from tests.rtc_client import Client

    peer = Client()
    yield peer
    await peer.close()
