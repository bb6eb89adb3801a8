"""``voicekiosk tools`` and ``tools call``, the real command against a real webhook, folder and MCP
server process: what the agent will have, whether each answers, and one call made by hand."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.desk import serve_desk
from tests.helpers import free_port, within
from tests.test_tools_mcp import DESK

pytestmark = pytest.mark.slow  # a Python process per command, and an MCP server in it


async def voicekiosk(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voicekiosk", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = await within(proc.communicate(), 60, f"voicekiosk {args[0]}")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "hours.md").write_text("# Hours\n\nOpen daily from nine to five.\n")
    return tmp_path / "vk.toml"


def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": "", "VOICEKIOSK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200",
            "DESK_TOKEN": "Bearer desk-secret-91"}  # fmt: skip


def declare(config: Path, url: str) -> None:
    config.write_text(
        f'[[tools]]\nname = "book_tour"\ndescription = "Book a tour."\nurl = "{url}"\n'
        'headers = { Authorization = "env:DESK_TOKEN" }\n'
        '[tools.parameters]\ntype = "object"\nrequired = ["time"]\nproperties = { time = { type = "string" } }\n'
        f'[[mcp]]\nname = "desk"\ncommand = {json.dumps([sys.executable, str(DESK)])}\nallowed_tools = ["light_on"]\n'
        f'[[mcp]]\nname = "docs"\nserver_url = "{url.rsplit("/api/", 1)[0]}/mcp"\n'
        '[knowledge]\npath = "knowledge"\n'
    )


async def test_tools_lists_every_tool_and_whether_it_answers(aiohttp_server: Any, config: Path, tmp_path: Path):
    desk, server = await serve_desk(aiohttp_server)
    declare(config, str(server.make_url("/api/tours")))
    code, out = await voicekiosk("tools", "--config", str(config), env=env(tmp_path))
    assert code == 0, out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "webhook" in lines["book_tour"] and "reachable (HTTP" in lines["book_tour"]
    assert "mcp desk" in lines["light_on"] and "listed by its server" in lines["light_on"]
    assert "folder indexed" in lines["lookup"]
    assert "remote mcp (OpenAI calls it)" in lines["docs"] and "reachable (HTTP" in lines["docs"]
    assert "127.0.0.1 is not on the internet, so OpenAI cannot reach it" in lines["docs"]
    assert desk.received == []  # a check books nothing
    assert "desk-secret" not in out

    # The webhook gone: said so, not a traceback.
    await server.close()
    code, out = await voicekiosk("tools", "--config", str(config), env=env(tmp_path))
    assert code == 0 and "NOT REACHABLE" in out and "Traceback" not in out


async def test_tools_call_runs_one_tool_as_the_agent_would(aiohttp_server: Any, config: Path, tmp_path: Path):
    desk, server = await serve_desk(aiohttp_server)
    declare(config, str(server.make_url("/api/tours")))
    code, out = await voicekiosk(
        "tools", "--config", str(config), "call", "book_tour", '{"time": "10:00"}', env=env(tmp_path)
    )
    assert code == 0 and json.loads(out) == {"booked": True, "ref": "T-10:00"}
    assert desk.received == [({"time": "10:00"}, "Bearer desk-secret-91")]
    code, out = await voicekiosk(
        "tools", "--config", str(config), "call", "lookup", '{"query": "open daily"}', env=env(tmp_path)
    )
    assert code == 0 and "[hours.md — Hours]" in out
    code, out = await voicekiosk(
        "tools", "--config", str(config), "call", "book_tour", '{"people": 2}', env=env(tmp_path)
    )
    assert code == 1 and "'time' is a required property" in out and len(desk.received) == 1


async def test_no_tools_and_a_missing_secret_say_so(tmp_path: Path, config: Path):
    config.write_text('voice = "cedar"\n')
    code, out = await voicekiosk("tools", "--config", str(config), env=env(tmp_path))
    assert code == 0 and out.startswith("No tools:")
    declare(config, f"http://127.0.0.1:{free_port()}/")
    code, out = await voicekiosk("tools", "--config", str(config), env={**env(tmp_path), "DESK_TOKEN": ""})
    assert code == 2 and "[[tools]] book_tour: headers.Authorization: $DESK_TOKEN is not set" in out
