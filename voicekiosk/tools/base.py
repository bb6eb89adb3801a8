"""What every tool is to the runner, whatever runs it (a webhook, an MCP server, a built-in)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


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


class Caller(Protocol):
    """The call a tool runs in, as the server's control channel holds it: what a tool (the
    built-ins) and the control channel itself may do to the call beyond answering the model."""

    call_id: str

    def tell_page(self, event: Mapping[str, Any]) -> bool:
        """Send ``event`` to the page that holds the call (over its ``/api/events`` socket);
        False when no page holds it now."""
        ...

    def end(self) -> bool:
        """End the call once the agent's goodbye has been said (the kiosk goes idle); True when a
        page holds the call (it ends it after the goodbye), False when the server will alone."""
        ...


@runtime_checkable
class CallTool(Tool, Protocol):
    """A tool that acts on the call it runs in (``show``, ``end_conversation``): the runner hands
    it the ``Caller``, and refuses it outside a call."""

    async def run_in(self, caller: Caller, arguments: dict[str, Any]) -> str:
        """As ``Tool.run``, for ``caller``'s call."""
        ...


def declaration(tool: Tool) -> dict[str, Any]:
    """The tool as a session's ``function`` tool: what the model sees of it, and nothing else."""
    return {"type": "function", "name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)}
