"""The Realtime sideband of ``FakeOpenAI`` (``openai-realtime.md`` §3): ``GET /v1/realtime?call_id=``
as a WebSocket, real key only, for a call that exists; the call's server events out, client events in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from voicekiosk.fake.checks import error


class Controllable(Protocol):
    """A Realtime call as its sideband reaches it (``AgentCall``)."""

    def listen(self, listener: Callable[[str | None], None]) -> Callable[[], None]: ...

    def command(self, message: str | bytes) -> None: ...


class Host(Protocol):
    """What the route uses of ``FakeOpenAI``."""

    api_key: str
    answerer: Any

    async def sideband_admit(self, request: web.Request, call_id: str) -> web.Response | None: ...


def not_found() -> web.Response:
    return error(404, "call_id_not_found", "No session found for the provided call_id")


async def sideband(host: Host, request: web.Request) -> web.StreamResponse:
    """Serve one sideband until the call or the server's socket ends."""
    call_id = request.query.get("call_id", "")
    if denied := await host.sideband_admit(request, call_id):
        return denied
    if "model" in request.query:
        return error(400, "invalid_request", "Pass either 'model' or 'call_id', not both.", param="model")
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    find = getattr(host.answerer, "sideband", None)
    call: Controllable | None = find(call_id) if find is not None and token == host.api_key else None
    if call is None:  # an ephemeral key gets this too (§3)
        return not_found()
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    out: asyncio.Queue[str | None] = asyncio.Queue()
    stop = call.listen(out.put_nowait)
    sender = asyncio.create_task(_relay(ws, out))
    try:
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                call.command(message.data)
    finally:
        stop()
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    return ws


async def _relay(ws: web.WebSocketResponse, out: asyncio.Queue[str | None]) -> None:
    """Send the call's events until it ends (or the sideband is dropped), then close."""
    while (text := await out.get()) is not None:
        with contextlib.suppress(ConnectionResetError):
            await ws.send_str(text)
    await ws.close()
