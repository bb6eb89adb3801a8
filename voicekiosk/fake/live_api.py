"""The GPT-Live REST side of ``FakeOpenAI`` (``openai-live.md`` §1, §4): ``POST /v1/live/sessions``,
its SIP-only hangup, and the ``/attach`` sideband WebSocket that lets a server send ``session.close``."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from voicekiosk.fake.answerers import Answerer, Sideband
from voicekiosk.fake.checks import error, json_body
from voicekiosk.fake.faults import Fault, spoiled
from voicekiosk.fake.live_checks import check_create
from voicekiosk.fake.live_rules import LiveRules
from voicekiosk.fake.schema import Refusal


class Host(Protocol):
    """What the Live routes use of ``FakeOpenAI``."""

    live: Answerer
    live_rules: LiveRules
    faults: list[Fault]
    made: Counter[str]  # calls answered, by engine

    async def admit(self, endpoint: str, request: web.Request, body: Any) -> web.Response | None: ...


def refused(refusal: Refusal) -> web.Response:
    return error(refusal.status, refusal.code, refusal.message, param=refusal.param)


class LiveRoutes:
    """``/v1/live/sessions`` and below. Endpoint names for ``recorded`` and ``add_fault``:
    ``live_sessions``, ``live_hangup``, ``live_attach``."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/v1/live/sessions", self._create)
        app.router.add_post("/v1/live/sessions/{session_id}/hangup", self._hangup)
        app.router.add_get("/v1/live/sessions/{session_id}/attach", self._attach)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        if denied := await self.host.admit("live_sessions", request, body):
            return denied
        if "model" in request.query:  # §7 pitfall 12: the model goes in the body
            return error(400, "unknown_parameter", "Unknown parameter: 'model'.", param="model")
        if body is None:
            return error(400, "invalid_json", "We could not parse the JSON body of your request.")
        rules = self.host.live_rules
        try:
            session, offer = check_create(body, rules)
        except Refusal as refusal:
            return refused(refusal)
        session_id = rules.id_prefix + secrets.token_hex(12)
        sdp = await self.host.live.answer(session_id, offer, session)
        self.host.made["live"] += 1
        answer = {"session": {"id": session_id}, "transport": {"type": "webrtc", "sdp": sdp}}
        return spoiled(self.host.faults, "live_sessions", web.json_response(answer, status=rules.created_status))

    async def _hangup(self, request: web.Request) -> web.StreamResponse:
        session_id = request.match_info["session_id"]
        if denied := await self.host.admit("live_hangup", request, session_id):
            return denied
        if not self.host.live_rules.webrtc_hangup:
            message = "Hangup ends SIP calls. End a WebRTC session with session.close."
            return error(400, "invalid_request", message, param="session_id")
        if not await self.host.live.hang_up(session_id):
            return _not_found(session_id)
        return web.Response(status=200)

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        """The sideband (§4.1): the session's events out, commands in (unrestricted by
        ``client.data_channel``); no history replayed. Ends with the session: a close handshake
        with ``?graceful_close=true``, else the connection just drops."""
        session_id = request.match_info["session_id"]
        if denied := await self.host.admit("live_attach", request, session_id):
            return denied
        find = getattr(self.host.live, "sideband", None)
        peer: Sideband | None = find(session_id) if find else None
        if peer is None:
            return _not_found(session_id)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        out: asyncio.Queue[str | None] = asyncio.Queue()
        stop = peer.listen(out.put_nowait)
        sender = asyncio.create_task(_relay(ws, out, request))
        try:
            async for message in ws:
                if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    peer.command(message.data, sideband=True)
        finally:
            stop()
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        return ws


async def _relay(ws: web.WebSocketResponse, out: asyncio.Queue[str | None], request: web.Request) -> None:
    """Send the session's events until it ends, then close as the attach asked."""
    while (text := await out.get()) is not None:
        with contextlib.suppress(ConnectionResetError):
            await ws.send_str(text)
    if request.query.get("graceful_close") == "true":
        await ws.close()
    elif request.transport is not None:
        request.transport.close()


def _not_found(session_id: str) -> web.Response:
    return error(404, "session_not_found", f"No session found with id '{session_id}'.", param="session_id")
