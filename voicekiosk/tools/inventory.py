"""``voicekiosk tools``: every tool the agent will have, where it comes from and whether it answers
now; and one tool run by hand. The tools are made exactly as the server makes them (same config,
same secrets, same MCP servers), then closed again."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from voicekiosk.settings import Settings
from voicekiosk.tools.runner import Outcome, ToolRunner
from voicekiosk.tools.toolbox import mcp_servers, open_toolbox
from voicekiosk.tools.webhook import WebhookTool


@dataclass(frozen=True)
class Row:
    """One tool: its name, where it comes from, and what a check found."""

    name: str
    source: str
    status: str


@contextlib.asynccontextmanager
async def running_tools(settings: Settings) -> AsyncIterator[ToolRunner | None]:
    """The server's tools, started (MCP servers listed, the knowledge folder indexed), then stopped.

    Raises:
      ConfigError / StartupError: as the server would at start-up.
    """
    toolbox = open_toolbox(settings.tools, settings.data_dir)
    servers = mcp_servers(settings.tools)
    try:
        await toolbox.start()
        listed = await servers.start() if servers is not None else []
        yield toolbox.runner(listed)
    finally:
        if servers is not None:
            await servers.stop()
        await toolbox.aclose()


async def inventory(settings: Settings) -> list[Row]:
    """A row per tool, each checked: webhooks reached (any HTTP answer counts), MCP tools listed by
    their running server, ``lookup``'s folder indexed; remote MCP servers, which OpenAI reaches, only
    as far as this machine can tell."""
    rows: list[Row] = []
    async with running_tools(settings) as runner, httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
        for tool in runner.tools.values() if runner else []:
            if isinstance(tool, WebhookTool):
                status = await _reached(client, tool.spec.url)
            elif tool.name == "lookup":
                status = f"folder indexed: {settings.tools.knowledge}"
            elif tool.source == "built-in":
                status = "acts on the page of a call (try it in one)"
            else:
                status = "listed by its server"
            rows.append(Row(tool.name, tool.source, status))
        for remote in settings.tools.remote_mcp:
            rows.append(Row(remote.name, "remote mcp (OpenAI calls it)", await _remote(client, remote.server_url)))
    return rows


async def call(settings: Settings, name: str, arguments: str) -> Outcome:
    """Run one tool by hand, as the agent would (arguments checked, timeout kept)."""
    async with running_tools(settings) as runner:
        if runner is None:
            return Outcome('{"error": "No tools are configured."}', False, 0.0)
        return await runner.call(name, arguments)


async def _reached(client: httpx.AsyncClient, url: str) -> str:
    """Whether the webhook's server answers at all (OPTIONS: nothing is booked by a check)."""
    try:
        response = await client.request("OPTIONS", url)
    except httpx.HTTPError as exc:
        return f"NOT REACHABLE ({type(exc).__name__})"
    return f"reachable (HTTP {response.status_code} to OPTIONS)"


async def _remote(client: httpx.AsyncClient, url: str) -> str:
    """What can be known here of a server OpenAI reaches itself: whether it answers this machine (it
    is sent no credential: it has none), and whether its address is one OpenAI cannot reach."""
    status = f"{await _reached(client, url)} from here"
    host = urlsplit(url).hostname or ""
    if _local(host):
        status += f"; {host} is not on the internet, so OpenAI cannot reach it: declare it with url = instead"
    return status


def _local(host: str) -> bool:
    """A name or address only this network knows (loopback, private, link-local, no dot, .local)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host == "localhost" or "." not in host or host.endswith((".local", ".lan", ".internal", ".home.arpa"))
    return ip.is_private or ip.is_loopback or ip.is_link_local
