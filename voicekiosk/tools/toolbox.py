"""The app's tools, made from the config: the ``ToolRunner``, the HTTP client its webhooks share and
the knowledge index ``lookup`` searches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from voicekiosk.tools.base import Tool
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.tools.spec import ToolsConfig
from voicekiosk.tools.webhook import WebhookTool

if TYPE_CHECKING:  # SQLite and the MCP SDK are imported only by a server that uses them
    from voicekiosk.tools.lookup import LookupTool
    from voicekiosk.tools.mcp_local import McpServers


@dataclass
class Toolbox:
    """The tools made from the config and what they own; ``start`` before the first call,
    ``aclose`` at cleanup."""

    tools: list[Tool]  # the ones made here: webhooks and built-ins (MCP servers' come with them)
    client: httpx.AsyncClient | None = None
    lookup: LookupTool | None = None

    def runner(self, more: Sequence[Tool] = ()) -> ToolRunner | None:
        """These tools and ``more`` (the MCP servers', once listed) as one runner; None if none."""
        tools = [*self.tools, *more]
        return ToolRunner(tools) if tools else None

    async def start(self) -> None:
        """Bring the knowledge index up to date with its folder."""
        if self.lookup is not None:
            await self.lookup.start()

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.lookup is not None:
            self.lookup.close()


def open_toolbox(config: ToolsConfig, data_dir: Path, environ: Mapping[str, str] | None = None) -> Toolbox:
    """The webhooks of ``config`` and its built-ins (``lookup`` with a knowledge folder, ``show``,
    ``end_conversation``), not started.

    Raises:
      ConfigError: a secret's environment variable is not set.
      StartupError: the knowledge index cannot be kept in ``data_dir``.
    """
    tools: list[Tool] = []
    client = None
    if config.webhooks:
        # Each call is bounded by its tool's timeout in the runner; this only caps what is left over.
        client = httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(60.0), follow_redirects=False)
        # A failure here leaves nothing to close: the client has not connected anywhere yet.
        tools += [WebhookTool(spec, client, environ) for spec in config.webhooks]
    lookup = None
    if config.knowledge is not None and "lookup" in config.enabled_builtins:
        from voicekiosk.tools.lookup import LookupTool

        lookup = LookupTool(config.knowledge, data_dir)
        tools.append(lookup)
    if "show" in config.enabled_builtins:
        from voicekiosk.tools.show import ShowTool

        tools.append(ShowTool(config.knowledge))
    if "end_conversation" in config.enabled_builtins:
        from voicekiosk.tools.end_conversation import EndConversationTool

        tools.append(EndConversationTool())
    return Toolbox(tools, client, lookup)


def mcp_servers(config: ToolsConfig) -> McpServers | None:
    """The config's local MCP servers (not started), their tools kept clear of every other name."""
    if not config.mcp:
        return None
    from voicekiosk.tools.mcp_local import McpServers

    taken = [s.name for s in config.webhooks] + [s.name for s in config.remote_mcp] + list(config.enabled_builtins)
    return McpServers(config.mcp, reserved=taken)
