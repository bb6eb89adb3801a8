"""A child process's stderr (a local MCP server's) in the terminal: drained to the end, each line
escaped, redacted and cut, a flood counted rather than shown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import TextIO

from voicekiosk.logsafe import escape
from voicekiosk.redact import redact

log = logging.getLogger("voicekiosk.tools.mcp")
STDERR_LINES = 100  # a server's stderr lines shown per connection; the rest are counted


@contextlib.asynccontextmanager
async def stderr_lines(label: str) -> AsyncIterator[TextIO]:
    """A pipe for a server's stderr: each line reaches the log escaped and cut, a flood counted.

    Yields the write end (for the child); the caller closes it once the child has its copy.
    """
    fd_read, fd_write = os.pipe()
    writer = os.fdopen(fd_write, "w")
    reader = asyncio.StreamReader(limit=64 * 1024)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd_read, "rb"))

    async def pump() -> None:
        """Reads to the end whatever comes (a server blocked on a full pipe would hang its calls)."""
        shown = hidden = 0
        buffer = b""
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(64 * 1024):
                *lines, buffer = (buffer + chunk).split(b"\n")
                if len(buffer) > 4096:  # a line without end: shown as far as it went
                    lines, buffer = [*lines, buffer], b""
                for line in lines:
                    if shown < STDERR_LINES:
                        shown += 1
                        text = line[:1000].decode("utf-8", "replace").rstrip()
                        log.info("%s says: %s", label, escape(redact(text))[:300])
                    else:
                        hidden += 1
        if hidden:
            log.info("%s: %d more lines of its output not shown", label, hidden)

    task = asyncio.create_task(pump(), name=f"voicekiosk {label} stderr")
    try:
        yield writer
    finally:
        writer.close()
        await asyncio.wait({task}, timeout=1.0)  # the last lines, if the process is gone
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        transport.close()
