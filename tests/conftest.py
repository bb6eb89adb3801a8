"""Shared fixtures: a fake OpenAI on loopback, settings pointing at it, and a client of our app."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from voicekiosk.fake import FakeOpenAI
from voicekiosk.settings import Settings
from voicekiosk.web.app import create_app

pytest_plugins = ["tests.audio"]  # the mic_wav fixture

REAL_KEY = "sk-proj-REALKEY" + "k" * 40 + "9z8y"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


@pytest.fixture
def make_client(aiohttp_client: Callable[..., Awaitable[TestClient]], settings: Settings) -> ClientFactory:
    """A test client of ``create_app``, with settings overridden by keyword."""

    async def make(**overrides: Any) -> TestClient:
        return await aiohttp_client(create_app(dataclasses.replace(settings, **overrides)))

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> TestClient:
    return await make_client()


TEST_NAMES = {"voicekiosk.test": "127.0.0.1"}  # a non-localhost name: pages there are not secure contexts


ROOT = Path(__file__).resolve().parent.parent


def require_namespaces() -> None:
    """Skip (fail, in CI) unless this process may make network namespaces (root, unshare)."""
    if subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode != 0:
        if os.environ.get("CI"):
            pytest.fail("unshare --net is not permitted: CI runs the tests as root")
        pytest.skip("needs root for unshare --net")


def in_own_namespace(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python *args`` in a network namespace of its own (only what it makes inside exists).

    Asserts that it exited 0; the namespace dies with it.
    """
    require_namespaces()
    proc = subprocess.run(
        ["unshare", "--net", sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def last_json(proc: subprocess.CompletedProcess[str]) -> Any:
    """What a namespace script reported: the JSON on its last line of output."""
    return json.loads(proc.stdout.strip().splitlines()[-1])


def require_isolated_browser() -> None:
    """Skip (fail, in CI) unless Chromium is here and loopback is the only network."""
    from tests.browser import CHROMIUM

    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (sudo apt-get install chromium)"
    elif [name for _, name in socket.if_nameindex() if name != "lo"]:
        # Outside a private namespace Chromium would gather (and try) this machine's LAN addresses.
        problem = "browser tests run only where loopback is the only network: use `make test`"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


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

    from tests.browser import CHROMIUM, chromium_args

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
    """Launch Chromium with flags of the test's choosing (all closed at the end)."""
    from playwright.async_api import async_playwright

    from tests.browser import CHROMIUM

    require_isolated_browser()
    async with async_playwright() as playwright:
        browsers = []

        async def launch(args: list[str]):
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=False, args=args)
            browsers.append(browser)
            return browser

        try:
            yield launch
        finally:
            for browser in browsers:
                await close_browser(browser)
