"""One LAN device floods the server; run inside a network namespace of its own (``unshare --net``).

The namespace's veth has 192.0.2.10 (``LAN``, the flooder's source and the server's address),
192.0.2.11 (a second device loading the page) and 192.0.2.12 (a slowloris). The flooder opens
200 WebSockets and then 1,200 idle sockets; meanwhile loopback ``/healthz`` and the second
device's page load are timed, and the slowloris must be cut off. Prints what it saw as JSON.
Used by tests/test_connection_bounds.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import LAN, add_lan, ip, loopback_up, wait_for
from tests.served import serving
from voicekiosk.settings import Settings
from voicekiosk.web.limits import Limits

SECOND, SLOW = "192.0.2.11", "192.0.2.12"
IDLE, SOCKETS = 1200, 200
HEAD_TIMEOUT = 4.0  # short, so the slowloris is cut off quickly; the flood is all set up well before


async def main(data_dir: Path) -> dict[str, Any]:
    settings = Settings(data_dir=data_dir, host="0.0.0.0", api_key=None, open=True)
    seen: dict[str, Any] = {}
    async with serving(settings, limits=Limits(head_timeout=HEAD_TIMEOUT)) as served:
        port, tally = served.port, served.server.connections
        ca = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
        async with contextlib.AsyncExitStack() as stack:
            slowloris = asyncio.create_task(_slowloris(port, ca))
            stack.callback(slowloris.cancel)
            await _flood(stack, port, ca, seen)
            seen["held"] = tally.held(LAN)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ca)) as local:
                seen["healthz"] = await _timed(local.get(f"https://127.0.0.1:{port}/healthz"))
            second = aiohttp.TCPConnector(ssl=ca, local_addr=(SECOND, 0))
            async with aiohttp.ClientSession(connector=second) as phone:
                seen["page"] = await _timed(phone.get(f"https://{LAN}:{port}/"))
            seen["slowloris_cut_after"] = await asyncio.wait_for(slowloris, HEAD_TIMEOUT + 5)
        # Every socket closed: the server's tally is back to nothing.
        await wait_for(lambda: tally.lan == 0 and tally.held("127.0.0.1") == 0, timeout=10, what="the tally")
        seen["refusal_lines"] = served.text.count(f"Refused a connection from {LAN}")
    return seen


async def _flood(stack: contextlib.AsyncExitStack, port: int, ca: ssl.SSLContext, seen: dict[str, Any]) -> None:
    """From ``LAN``: ``SOCKETS`` WebSockets, then ``IDLE`` idle connections, all left open (until ``stack`` ends)."""
    flooder = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ca, limit=0, local_addr=(LAN, 0)))
    await stack.enter_async_context(flooder)
    sockets = await asyncio.gather(*(_websocket(flooder, f"wss://{LAN}:{port}/api/events") for _ in range(SOCKETS)))
    seen["websockets"] = sorted(s if isinstance(s, int) else 101 for s in sockets)
    for ws in sockets:
        if not isinstance(ws, int):
            stack.push_async_callback(ws.close)
    idle: list[asyncio.StreamWriter] = []
    stack.callback(lambda: [writer.transport.abort() for writer in idle])
    for _ in range(IDLE // 100):  # in batches: the listen backlog is 128
        opened = await asyncio.gather(*(_idle(port) for _batch in range(100)))
        idle += [writer for writer in opened if writer]


async def _websocket(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse | int:
    """An open WebSocket, or the status it was refused with (0: the connection was closed at once)."""
    try:
        return await asyncio.wait_for(session.ws_connect(url), 20)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    except (aiohttp.ClientConnectionError, ssl.SSLError, ConnectionError):
        return 0


async def _idle(port: int) -> asyncio.StreamWriter | None:
    """A TCP connection from the flooder that sends nothing (None if refused before it opened)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(LAN, port, local_addr=(LAN, 0)), 10)
    except (OSError, TimeoutError):
        return None
    return writer


async def _timed(request: Any) -> list[float]:
    """[status, seconds] of one request."""
    start = time.monotonic()
    async with request as response:
        await response.read()
        return [response.status, round(time.monotonic() - start, 3)]


async def _slowloris(port: int, ca: ssl.SSLContext) -> float:
    """Seconds from connecting until the server cuts off a client that never ends its headers."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection(LAN, port, ssl=ca, local_addr=(SLOW, 0))
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: " + LAN.encode() + b"\r\n")
        for n in range(int(HEAD_TIMEOUT * 10) + 100):  # a header line every 0.1 s, never the blank line
            writer.write(b"X-%d: y\r\n" % n)
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                    return round(time.monotonic() - start, 3)
        return -1.0
    except (ConnectionError, ssl.SSLError):
        return round(time.monotonic() - start, 3)
    finally:
        writer.transport.abort()


if __name__ == "__main__":
    loopback_up()
    add_lan()
    for address in (SECOND, SLOW):
        ip("addr", "add", f"{address}/24", "dev", "vk0")
    resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))  # this process is the flooder too
    print(json.dumps(asyncio.run(main(Path(sys.argv[1])))))
