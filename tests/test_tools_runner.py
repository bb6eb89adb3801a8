"""The tool runner with real webhooks on loopback: arguments checked before anything runs, the
secret header sent, failures (timeout, 500, a tool's own bug) turned into text the agent can say,
and nothing secret in the terminal."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import pytest
from aiohttp.test_utils import TestServer

from tests.desk import PARAMETERS, Desk, serve_desk
from tests.helpers import wait_for
from voicekiosk.tools.base import ToolError
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.tools.spec import Secret, WebhookSpec
from voicekiosk.tools.webhook import WebhookTool

SECRET = "Bearer tours-secret-4f9a"


@pytest.fixture
async def desk(aiohttp_server: Any) -> tuple[Desk, TestServer]:
    return await serve_desk(aiohttp_server)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def book_tour(server: TestServer, client: httpx.AsyncClient, timeout: float = 2.0) -> WebhookTool:
    spec = WebhookSpec(
        name="book_tour",
        description="Book a guided tour.",
        parameters=PARAMETERS,
        url=str(server.make_url("/api/tours")),
        headers=(("Authorization", Secret("TOURS_TOKEN")),),
        timeout=timeout,
    )
    return WebhookTool(spec, client, environ={"TOURS_TOKEN": SECRET})


async def test_a_webhook_gets_valid_arguments_and_its_secret_and_the_model_its_answer(
    desk: tuple[Desk, TestServer], client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voicekiosk")
    intranet, server = desk
    runner = ToolRunner([book_tour(server, client)])
    assert runner.declarations() == [
        {"type": "function", "name": "book_tour", "description": "Book a guided tour.", "parameters": PARAMETERS}
    ]
    outcome = await runner.call("book_tour", json.dumps({"time": "14:00", "people": 3}))
    assert outcome.ok and json.loads(outcome.output) == {"booked": True, "ref": "T-14:00"}
    assert intranet.received == [({"time": "14:00", "people": 3}, SECRET)]
    # The line is drawn once the output is on its way (the model waits for that, not for the line).
    await wait_for(lambda: "tool book_tour(" in caplog.text and "ok in" in caplog.text, timeout=2, what="the line")


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ('{"people": 2}', "Invalid arguments for book_tour (arguments): 'time' is a required property"),
        ('{"time": "9:00", "people": 0}', "Invalid arguments for book_tour (people)"),
        ('{"time": "9:00", "url": "http://evil"}', "Additional properties are not allowed"),
        ("[1, 2]", "The arguments must be a JSON object."),
        ("{not json", "The arguments are not JSON."),
        ("{" + " " * 20000 + "}", "The arguments are too long."),
    ],
)
async def test_bad_arguments_never_reach_the_webhook(
    desk: tuple[Desk, TestServer], client: httpx.AsyncClient, arguments: str, said: str
) -> None:
    intranet, server = desk
    outcome = await ToolRunner([book_tour(server, client)]).call("book_tour", arguments)
    assert not outcome.ok and said in json.loads(outcome.output)["error"]
    assert intranet.received == []


async def test_failures_become_words_and_keep_secrets(
    desk: tuple[Desk, TestServer], client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="voicekiosk")
    intranet, server = desk
    runner = ToolRunner([book_tour(server, client, timeout=0.3)])
    intranet.status = 500
    failed = await runner.call("book_tour", '{"time": "10:00"}')
    assert json.loads(failed.output) == {"error": "book_tour answered with an error (HTTP 500)."}
    intranet.status, intranet.delay = 200, 2.0
    slow = await runner.call("book_tour", '{"time": "11:00"}')
    assert json.loads(slow.output) == {"error": "book_tour took too long (over 0.3 s)."}
    unknown = await runner.call("\x1b[2Jrm -rf", "{}")
    await wait_for(lambda: "rm -rf" in caplog.text, timeout=2, what="its log line")
    assert not unknown.ok and "\x1b" not in caplog.text
    assert SECRET not in caplog.text + failed.output + slow.output + unknown.output


async def test_a_tool_s_own_bug_is_a_failure_the_agent_can_say() -> None:
    class Broken:
        name, description, source, timeout = "broken", "Always fails.", "test", 1.0
        parameters: ClassVar[dict[str, Any]] = {"type": "object"}

        async def run(self, arguments: dict[str, Any]) -> str:
            raise KeyError("internal detail")

    class Refusing(Broken):
        name = "refusing"

        async def run(self, arguments: dict[str, Any]) -> str:
            raise ToolError("The room is booked.")

    runner = ToolRunner([Broken(), Refusing()])
    broken, refusing = await runner.call("broken", "{}"), await runner.call("refusing", "")
    assert json.loads(broken.output) == {"error": "broken failed."} and "internal detail" not in broken.output
    assert json.loads(refusing.output) == {"error": "The room is booked."} and not refusing.ok
