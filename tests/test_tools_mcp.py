"""Local MCP servers' tools become the agent's: a real MCP server process (tests/mcp_desk.py, written
with the SDK) started over stdio, and the same server over streamable HTTP on loopback behind a
secret header. Listed, filtered, called through the runner; failures, time-outs and a killed
server become short messages; shutdown leaves no process and no task."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.served import RAW_CONTROL, terminal
from voicekiosk.errors import ConfigError, StartupError
from voicekiosk.tools.mcp_local import McpServers
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.tools.spec import McpSpec, Secret

DESK = str(Path(__file__).with_name("mcp_desk.py"))
TOKEN = "desk-token-7c1e5a9b"
DESK_TOOLS = ("light_on", "slow", "fail", "pid", "noisy", "big")

pytestmark = pytest.mark.usefixtures("no_leftover_tasks")


def stdio(name: str = "desk", allowed: tuple[str, ...] | None = None, timeout: float = 10.0) -> McpSpec:
    return McpSpec(name=name, command=(sys.executable, DESK), allowed_tools=allowed, timeout=timeout)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def desk() -> AsyncIterator[tuple[McpServers, ToolRunner]]:
    servers = McpServers([stdio(allowed=(*DESK_TOOLS, "flood"), timeout=3)], {"show"})
    runner = ToolRunner(await servers.start())
    yield servers, runner
    await servers.stop()


async def test_tools_are_listed_filtered_and_called_with_checked_arguments(desk) -> None:
    servers, runner = desk
    tools = {t.name: t for t in servers.tools}
    assert set(tools) == {*DESK_TOOLS, "flood"}
    light = tools["light_on"]
    assert light.source == "mcp desk" and light.description == "Turn on the light in a room."
    assert light.parameters["properties"]["room"]["type"] == "string" and light.parameters["required"] == ["room"]
    assert {d["name"] for d in runner.declarations()} == set(tools)

    outcome = await runner.call("light_on", json.dumps({"room": "204"}))
    assert outcome.ok and outcome.output == "The light in 204 is on."

    refused = await runner.call("light_on", json.dumps({"room": 204}))  # checked here: never reaches the server
    assert not refused.ok and "Invalid arguments for light_on (room)" in json.loads(refused.output)["error"]


async def test_errors_and_timeouts_become_short_messages(desk) -> None:
    _, runner = desk
    failed = await runner.call("fail", "{}")
    error = json.loads(failed.output)["error"]
    assert not failed.ok and error.startswith("fail failed: ") and error.endswith("the desk is on fire")

    runner.tools["slow"].timeout = 0.5  # the runner bounds the call; the SDK cancels it on the server
    slow = await runner.call("slow", json.dumps({"seconds": 30}))
    assert not slow.ok and json.loads(slow.output)["error"] == "slow took too long (over 0.5 s)."
    assert slow.ms < 1500

    big = await runner.call("big", "{}")  # bounded on our side too
    assert big.ok and len(big.output) < 9000

    again = await runner.call("light_on", json.dumps({"room": "hall"}))  # the session survived all that
    assert again.ok


async def test_server_output_reaches_the_log_escaped(desk, caplog: pytest.LogCaptureFixture) -> None:
    _, runner = desk
    with caplog.at_level(logging.INFO, logger="voicekiosk.tools"):
        outcome = await runner.call("noisy", "{}")
        assert outcome.ok
        line = await wait_for(
            lambda: next((r.getMessage() for r in caplog.records if "desk says hi" in r.getMessage()), None),
            timeout=5,
            what="the server's stderr line",
        )
    assert "\x1b" not in line and "\x07" not in line
    assert "mcp desk says:" in line


async def test_what_the_sdk_quotes_of_a_server_reaches_the_terminal_escaped() -> None:
    """A server that prints a banner on stdout (the protocol's channel): the SDK complains, quoting it."""
    banner = (
        "import os, sys; os.write(1, b'\\x1b[2J\\x1b]0;pwned\\x07 garbled banner\\n'); "
        "os.execv(sys.executable, sys.argv[1:])"
    )
    spec = McpSpec(name="desk", command=(sys.executable, "-c", banner, sys.executable, DESK), allowed_tools=("noisy",))
    servers = McpServers([spec])
    with terminal() as out:
        try:
            runner = ToolRunner(await servers.start())
            assert (await runner.call("noisy", "{}")).ok
            await wait_for(lambda: "desk says hi" in out.getvalue(), timeout=5, what="the stderr line")
        finally:
            await servers.stop()
    text = out.getvalue()
    assert "garbled banner" in text and "pwned" in text
    assert not RAW_CONTROL.search(text.replace("\n", ""))


@pytest.mark.slow
async def test_a_flood_on_stderr_does_not_block_the_server(desk, caplog: pytest.LogCaptureFixture) -> None:
    _, runner = desk
    with caplog.at_level(logging.INFO, logger="voicekiosk.tools"):
        outcome = await runner.call("flood", "{}")
        assert outcome.ok and outcome.output == "still here"
        assert (await runner.call("light_on", json.dumps({"room": "204"}))).ok
    shown = [r for r in caplog.records if "mcp desk says:" in r.getMessage()]
    assert len(shown) <= 100 and all(len(r.getMessage()) < 400 for r in shown)


@pytest.mark.slow
async def test_a_killed_server_is_restarted_and_its_tools_work_after(desk) -> None:
    servers, runner = desk
    first = int((await runner.call("pid", "{}")).output)
    call = asyncio.create_task(runner.call("slow", json.dumps({"seconds": 2.5})))
    await asyncio.sleep(0.5)
    os.kill(first, signal.SIGKILL)
    broken = await asyncio.wait_for(call, timeout=5)
    assert not broken.ok and "not available" in json.loads(broken.output)["error"]

    later = await wait_for(lambda: runner.call("pid", "{}"), timeout=15, what="a call after the restart")
    assert later.ok and int(later.output) != first
    assert servers.servers[0].connections == 2
    assert (await runner.call("light_on", json.dumps({"room": "204"}))).ok

    second = int(later.output)
    await servers.stop()
    assert not alive(first) and not alive(second)


@pytest.mark.slow
async def test_shutdown_leaves_no_process() -> None:
    servers = McpServers([stdio(), stdio("lobby", allowed=("pid",))])
    tools = await servers.start()
    names = {t.name for t in tools}
    assert "pid" not in names and {"desk_pid", "lobby_pid", "light_on"} <= names  # a clash gets the server's name
    runner = ToolRunner(tools)
    pids = [int((await runner.call(n, "{}")).output) for n in ("desk_pid", "lobby_pid")]
    assert len(set(pids)) == 2 and all(alive(p) for p in pids)
    await servers.stop()
    assert not any(alive(p) for p in pids)


async def test_an_allowed_tool_the_server_lacks_stops_start_up() -> None:
    servers = McpServers([stdio(allowed=("light_on", "light_off"))])
    with pytest.raises(ConfigError, match=r"\[\[mcp\]\] desk: allowed_tools 'light_off' is not offered"):
        await servers.start()


async def test_a_server_that_cannot_start_stops_start_up() -> None:
    servers = McpServers([McpSpec(name="home", command=("/nonexistent/mcp-server",), timeout=3)])
    with pytest.raises(StartupError, match=r"\[\[mcp\]\] home: command not found"):
        await servers.start()


# -- streamable HTTP ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HttpDesk:
    """tests/mcp_desk.py over streamable HTTP on a loopback port, in a process of its own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DESK_TOKEN"} | {"DESK_TOKEN": TOKEN}
        command = [sys.executable, DESK, "--http", str(self.port)]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert self.process.poll() is None, "the HTTP desk exited"
            time.sleep(0.05)
        raise AssertionError("the HTTP desk did not listen within 15 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=5)
            self.process = None


@pytest.fixture
def http_desk() -> Iterator[HttpDesk]:
    desk = HttpDesk()
    desk.start()
    try:
        yield desk
    finally:
        desk.stop()


@pytest.mark.slow
async def test_streamable_http_server_gets_its_secret_header_and_is_reached_again(http_desk: HttpDesk) -> None:
    spec = McpSpec(
        name="desk",
        url=http_desk.url,
        allowed_tools=("light_on",),
        headers=(("Authorization", Secret("DESK_AUTH")),),
        timeout=5,
    )
    servers = McpServers([spec], environ={"DESK_AUTH": f"Bearer {TOKEN}"})
    runner = ToolRunner(await servers.start())
    try:
        outcome = await runner.call("light_on", json.dumps({"room": "lobby"}))
        assert outcome.ok and outcome.output == "The light in lobby is on."

        http_desk.stop()  # the server goes away: a call fails at once, and makes us reconnect
        gone = await runner.call("light_on", json.dumps({"room": "lobby"}))
        assert not gone.ok and json.loads(gone.output)["error"] == "light_on is not available right now."
        http_desk.start()
        back = await wait_for(lambda: runner.call("light_on", json.dumps({"room": "hall"})), timeout=15, what="a call")
        assert back.output == "The light in hall is on." and servers.servers[0].connections == 2
    finally:
        await servers.stop()

    wrong = McpServers([spec], environ={"DESK_AUTH": "Bearer wrong-token-0000"})
    with pytest.raises(StartupError, match=r"\[\[mcp\]\] desk: ") as refused:
        await wrong.start()
    assert TOKEN not in str(refused.value)


# -- owned by the app -----------------------------------------------------------------------------


@pytest.mark.slow
async def test_the_app_runs_its_servers_while_it_serves(make_client) -> None:
    from voicekiosk.tools.spec import ToolsConfig
    from voicekiosk.web.appkeys import MCP

    client = await make_client(tools=ToolsConfig(mcp=(stdio(allowed=("pid", "light_on")),)))
    servers = client.app[MCP]
    assert servers is not None and {t.name for t in servers.tools} == {"pid", "light_on"}
    pid = int((await ToolRunner(servers.tools).call("pid", "{}")).output)
    assert alive(pid)
    await client.close()
    assert not alive(pid)


async def test_an_app_without_mcp_servers_starts_none(client) -> None:
    from voicekiosk.web.appkeys import MCP

    assert client.app[MCP] is None
