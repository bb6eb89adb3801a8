"""Remote MCP servers (``[[mcp]]`` with ``server_url``): OpenAI reaches them itself, so they are
declared to the Realtime session as ``mcp`` tools (``openai-realtime.md`` §4.1). OpenAI echoes the
session to the page, so a declaration carries nothing secret (``declarations`` refuses credentials)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voicekiosk.tools.spec import RemoteMcpSpec


def remote_mcp_declarations(specs: Sequence[RemoteMcpSpec]) -> list[dict[str, Any]]:
    """The session's ``{type: "mcp", ...}`` tools."""
    tools: list[dict[str, Any]] = []
    for spec in specs:
        tool: dict[str, Any] = {
            "type": "mcp",
            "server_label": spec.name,
            "server_url": spec.server_url,
            "require_approval": spec.require_approval,
        }
        if spec.allowed_tools is not None:
            tool["allowed_tools"] = list(spec.allowed_tools)
        if spec.description is not None:
            tool["server_description"] = spec.description
        tools.append(tool)
    return tools
