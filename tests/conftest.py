"""Shared fixtures: a fake OpenAI on loopback, settings pointing at it, and a client of our app."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from voicekiosk.app import create_app
from voicekiosk.fake import FakeOpenAI
from voicekiosk.settings import Settings

REAL_KEY = "sk-proj-REALKEY" + "k" * 40 + "9z8y"


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
