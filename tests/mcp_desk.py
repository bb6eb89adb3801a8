"""A tiny MCP server for the tests, written with the ``mcp`` SDK: a reception desk's lights.

``python tests/mcp_desk.py`` serves on stdio; ``--http PORT`` serves streamable HTTP on loopback
and answers only requests carrying ``Authorization: Bearer $DESK_TOKEN``."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

desk = MCPServer("desk", log_level="WARNING")
seen: list[str] = []  # the Authorization headers the HTTP server was sent


@desk.tool()
def light_on(room: str) -> str:
    """Turn on the light in a room."""
    return f"The light in {room} is on."


@desk.tool()
async def slow(seconds: float = 30.0) -> str:
    """Take a while."""
    await asyncio.sleep(seconds)
    return "done at last"


@desk.tool()
def fail() -> str:
    """Always fails."""
    raise ToolError("the desk is on fire")


@desk.tool()
def pid() -> str:
    """The server's process id (so a test can kill it)."""
    return str(os.getpid())


@desk.tool()
def noisy() -> str:
    """Writes terminal escapes to stderr and answers with them too."""
    print("\x1b[2J\x1b]0;pwned\x07 desk says hi", file=sys.stderr, flush=True)
    return "quiet \x1b[31mnow"


@desk.tool()
def flood() -> str:
    """Writes 2 MB to stderr (more than a pipe holds), then answers."""
    for _ in range(20_000):
        sys.stderr.write("flood " * 16 + "\n")
    sys.stderr.write("x" * 100_000)  # and a line without end
    sys.stderr.flush()
    return "still here"


@desk.tool()
def big() -> str:
    """A very long answer."""
    return "x" * 200_000


def serve_http(port: int) -> None:
    """Streamable HTTP on 127.0.0.1:port, behind a bearer token from the environment."""
    import uvicorn

    token = os.environ["DESK_TOKEN"]
    app = desk.streamable_http_app()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"").decode()
            if auth != f"Bearer {token}":
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"no"})
                return
        await app(scope, receive, send)

    uvicorn.run(guarded, host="127.0.0.1", port=port, log_level="warning", lifespan="on")  # type: ignore[arg-type]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        serve_http(int(sys.argv[2]))
    else:
        desk.run()
