"""What every tool is to the runner, whatever runs it (a webhook, an MCP server, a built-in)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class ToolError(Exception):
    """A tool failed in a way the agent can say aloud: the message is short and has no secret."""


class Tool(Protocol):
    """One function the agent may call."""

    name: str
    description: str
    parameters: Mapping[str, Any]  # a JSON schema of an object
    source: str  # where it comes from, for `voicekiosk tools` and the terminal ("webhook", "mcp home")
    timeout: float  # seconds the runner gives it

    async def run(self, arguments: dict[str, Any]) -> str:
        """The result, as text for the model.

        Raises:
          ToolError: a failure the agent can explain.
        """
        ...


def declaration(tool: Tool) -> dict[str, Any]:
    """The tool as a session's ``function`` tool: what the model sees of it, and nothing else."""
    return {"type": "function", "name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)}
