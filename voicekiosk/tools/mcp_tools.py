"""What the agent sees of local MCP servers: each allowed tool as a ``Tool`` (named clear of every
other tool, its schema checked), and a call's result as text for the model."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from voicekiosk.errors import ConfigError
from voicekiosk.logsafe import escape
from voicekiosk.tools.base import Tool
from voicekiosk.tools.spec import NAME

if TYPE_CHECKING:
    import mcp_types

    from voicekiosk.tools.mcp_local import McpServer

log = logging.getLogger("voicekiosk.tools.mcp")
MAX_RESULT = 16 * 1024  # characters of a result kept (the runner cuts again for the model)
MAX_DESCRIPTION = 1024


class McpTool:
    """One tool of a local MCP server, as a ``Tool``."""

    def __init__(self, server: McpServer, remote_name: str, name: str, description: str, schema: dict[str, Any]):
        self.server, self.remote_name = server, remote_name
        self.name, self.description = name, description
        self.parameters: Mapping[str, Any] = schema
        self.source = f"mcp {server.spec.name}"
        self.timeout = server.spec.timeout

    async def run(self, arguments: dict[str, Any]) -> str:
        return await self.server.call(self.remote_name, arguments, self.name)


def make_tools(servers: Sequence[McpServer], reserved: frozenset[str]) -> list[Tool]:
    """The allowed tools of every server, named; an allowed tool not offered is a config error
    (a typo in the file must not leave the agent quietly unable to do its job)."""
    import jsonschema

    chosen: list[tuple[McpServer, mcp_types.Tool, dict[str, Any]]] = []
    for server in servers:
        offered = {t.name: t for t in server.listing}
        allowed = server.spec.allowed_tools
        if allowed is not None:
            missing = [n for n in allowed if n not in offered]
            if missing:
                raise ConfigError(
                    f"[[mcp]] {server.spec.name}: allowed_tools {escape(missing[0])!r} is not offered "
                    f"(it offers: {escape(', '.join(sorted(offered))[:200]) or 'nothing'})"
                )
        for tool in server.listing:
            if allowed is not None and tool.name not in allowed:
                continue
            schema = dict(tool.input_schema or {})
            schema.setdefault("type", "object")
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
                ok = schema["type"] == "object" and bool(NAME.fullmatch(tool.name))
            except jsonschema.SchemaError:
                ok = False
            if not ok:
                if allowed is not None:
                    raise ConfigError(
                        f"[[mcp]] {server.spec.name}: tool {escape(tool.name)!r} has an unusable name or schema"
                    )
                log.warning("%s: tool %s skipped (unusable name or schema)", server.label, escape(tool.name)[:64])
                continue
            chosen.append((server, tool, schema))
    counts: dict[str, int] = {}
    for _, tool, _ in chosen:
        counts[tool.name] = counts.get(tool.name, 0) + 1
    made: list[Tool] = []
    names: set[str] = set(reserved)
    for server, tool, schema in chosen:
        name = tool.name
        if name in reserved or counts[name] > 1:
            name = f"{server.spec.name}_{tool.name}"[:64]
        if name in names:
            raise ConfigError(f"[[mcp]] {server.spec.name}: two tools would be named {name!r}")
        names.add(name)
        description = (tool.description or tool.title or tool.name)[:MAX_DESCRIPTION]
        made.append(McpTool(server, tool.name, name, description, schema))
    return made


def result_text(result: mcp_types.CallToolResult) -> str:
    """The text blocks joined; other blocks named; structured content when there is no text."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)  # type: ignore[union-attr]
        elif kind == "resource" and isinstance(text := getattr(block.resource, "text", None), str):  # type: ignore[union-attr]
            parts.append(text)
        else:
            parts.append(f"[{kind or 'content'}]")
        if sum(map(len, parts)) > MAX_RESULT:
            break
    text = "\n".join(parts)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False, separators=(",", ":"))
    if len(text) > MAX_RESULT:
        text = text[:MAX_RESULT] + " [cut]"
    return text or "(done)"
