"""Remote MCP servers (``[[mcp]]`` with ``server_url``): OpenAI reaches them itself, so they are
declared to the Realtime session as ``mcp`` tools. The declarations carry the secret header values:
they go to OpenAI with the session, never to the browser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from voicekiosk.redact import register_secret
from voicekiosk.tools.spec import RemoteMcpSpec


def remote_mcp_declarations(
    specs: Sequence[RemoteMcpSpec], environ: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The session's ``{type: "mcp", ...}`` tools, secrets resolved (and registered for redaction).

    Raises:
      ConfigError: a header's environment variable is not set.
    """
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
        if spec.headers:
            headers = {}
            for header, secret in spec.headers:
                value = secret.value(environ)
                register_secret(value)
                headers[header] = value
            tool["headers"] = headers
        tools.append(tool)
    return tools
