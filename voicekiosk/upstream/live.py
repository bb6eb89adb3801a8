"""The GPT-Live engine (``openai-live.md`` §1, §3, §4): a WebRTC session from the page's offer (with
the server's tools, Responses delegation), ended and given standing rules (a visitor's language)
from the server over the session's sideband WebSocket (``live_commands.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
import httpx

from voicekiosk.errors import UpstreamError
from voicekiosk.ledger.prices import Minutes
from voicekiosk.settings import Settings
from voicekiosk.tools.prompt import with_languages, with_tools
from voicekiosk.upstream.engine import CALL_ID, Call, Ended, end_unusable
from voicekiosk.upstream.http import (
    JSON_BODY,
    Answer,
    UpstreamClient,
    malformed,
    status_error,
    too_large,
    unreachable,
    websocket_client,
    websocket_url,
)
from voicekiosk.upstream.live_commands import Stream, append_instructions, close_session, queued, socket_stream
from voicekiosk.upstream.record import CallRecord
from voicekiosk.upstream.sideband import Sideband

log = logging.getLogger("voicekiosk.upstream")


# What the page may send on its channel (§1.2 ``client.data_channel``): the greeting and a polite
# "cannot do that here" (commentary), and ending the call. Not backend commands, session updates
# or instructions appends (trusted standing rules: a visitor's language is the server's to append,
# ``LiveEngine.instruct``).
PAGE_EVENTS = ("session.commentary.append", "session.close")


def live_session(settings: Settings, tools: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The create's ``session`` (§1.2, a closed object): no ``audio.format`` on WebRTC; client
    delegation (the API's default, so omitted) unless a backend model is configured or ``tools``
    (the ``function`` tools this server runs) are declared: then Responses delegation (§3.2), its
    tools the hosted ones of ``[live.delegation]`` and these, and the voice prompt says when to
    delegate (§3.6)."""
    names = [tool["name"] for tool in tools]
    session: dict[str, Any] = {
        "model": settings.model,
        "instructions": with_tools(with_languages(settings.instructions, settings.languages), names, delegated=True),
        "audio": {"output": {"voice": settings.voice}},
        "client": {"data_channel": {"allowed_client_events": list(PAGE_EVENTS)}},
    }
    model = settings.delegation_model if tools or settings.live_delegation_model else None
    if model:
        backend: dict[str, Any] = {"model": model}
        if settings.live_delegation_instructions:
            backend["instructions"] = settings.live_delegation_instructions
        hosted = [{"type": tool} for tool in settings.live_delegation_tools]
        if hosted or tools:
            backend["tools"] = hosted + [dict(tool) for tool in tools]
        session["delegation"] = {"type": "responses", "responses": backend}
    if settings.live_standby:
        # §5.2: the only names seen (orq.ai, one source); a wrong one fails the create with
        # unknown_parameter, which the terminal then names (``explain_refusal``).
        session["idle_timeout_s"] = settings.live_standby
        session["wake_policy"] = {"type": "speech"}
    return session


class LiveEngine:
    """The Live ``Engine``: REST through an ``UpstreamClient``, the sideband through one lazily made
    ``aiohttp.ClientSession`` (httpx has no WebSockets)."""

    name = "live"
    max_session = 2 * 60 * 60.0  # sessions expire two hours after they start (§4.3)

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        tools: Sequence[dict[str, Any]] = (),
        sidebands: Callable[[str], Sideband | None] | None = None,
    ) -> None:
        self.settings = settings
        self.upstream = UpstreamClient(settings, transport=transport)
        # Encoded once: every create sends the same session, only the offer differs.
        session = json.dumps(live_session(settings, tools)).encode()
        self._body_start = b'{"session":' + session + b',"transport":'
        self._sidebands = sidebands
        self._sockets: aiohttp.ClientSession | None = None

    def minutes(self, record: CallRecord) -> Minutes:
        """GPT-Live bills session time, at the model's rate (the config's prices over the table's)."""
        return record.minutes(self.settings.model, self.settings.prices)

    async def aclose(self) -> None:
        await self.upstream.aclose()
        if self._sockets is not None:
            await self._sockets.close()

    async def create_call(self, offer_sdp: str) -> Call:
        """``POST /live/sessions`` with the offer as sent (a stripped one is refused, §1.4); once."""
        transport = json.dumps({"type": "webrtc", "sdp": offer_sdp}).encode()
        try:
            response, ms = await self.upstream.send(
                "POST", "live/sessions", "call", content=self._body_start + transport + b"}", headers=JSON_BODY
            )
        except UpstreamError as exc:
            if exc.upstream_code == "unknown_parameter" and self.settings.live_standby:
                log.error("OpenAI does not take the standby settings as sent: set live_standby = 0 (see README)")
            raise
        session_id, answer = _created(response)
        if response.complete and session_id is not None and answer is not None:
            return Call(session_id, answer, ms)
        if not response.complete:
            problem = too_large("call")
        else:
            problem = malformed("call", "no session id" if session_id is None else "the answer is not SDP")
        if session_id is not None:
            await end_unusable(self, session_id)
        raise problem

    async def hang_up(self, call_id: str) -> Ended:
        """End a session (§4.2): send ``session.close`` on its sideband (the one the server keeps
        open for tools, else a fresh attach), wait for ``session.closed`` and its final usage, within
        ``upstream_timeout``. A session already gone (404, or the socket ends) is fine. Unconfirmed,
        the REST hangup is tried once more (its own ``upstream_timeout``).
        """
        _check_id(call_id)
        started = time.perf_counter()
        sideband = self._sidebands(call_id) if self._sidebands is not None else None
        try:
            async with asyncio.timeout(self.settings.upstream_timeout), self._stream(call_id, sideband) as stream:
                if stream is None:
                    return Ended()
                seconds = await close_session(stream, call_id)
        except (TimeoutError, UpstreamError, ConnectionError) as exc:
            # Not confirmed: e.g. a session no page ever joined, which refuses session.close until
            # it starts, or a sideband that would not open. Last resort: the REST hangup,
            # documented for SIP only (open question 3).
            if await self._hang_up_by_rest(call_id):
                return Ended((time.perf_counter() - started) * 1000)
            if isinstance(exc, UpstreamError):
                raise
            raise UpstreamError(504, "upstream_timeout", "OpenAI did not confirm the hang-up in time.") from None
        return Ended((time.perf_counter() - started) * 1000, seconds)

    async def instruct(self, call_id: str, rule: str) -> None:
        """Append ``rule`` to a started session's instructions (§2.4, trusted standing rules) from
        the server: on the sideband it keeps for tools if that is open, else on a fresh attach
        (closed again after, the session going on); confirmed within ``upstream_timeout``."""
        _check_id(call_id)
        sideband = self._sidebands(call_id) if self._sidebands is not None else None
        try:
            async with asyncio.timeout(self.settings.upstream_timeout):
                async with self._stream(call_id, sideband if sideband and sideband.is_open else None) as stream:
                    if stream is None:
                        raise UpstreamError(404, "unknown_call", "OpenAI has no such session (any more).")
                    await append_instructions(stream, rule)
        except TimeoutError:
            raise UpstreamError(504, "upstream_timeout", "OpenAI did not confirm the instructions in time.") from None
        except (ConnectionError, aiohttp.ClientError) as exc:
            raise unreachable("instructions", exc) from None

    @contextlib.asynccontextmanager
    async def _stream(self, call_id: str, sideband: Sideband | None) -> AsyncIterator[Stream | None]:
        """``sideband`` if given, else a fresh attach (None: OpenAI has no such session)."""
        if sideband is not None:
            async with sideband.tap() as queue:
                yield sideband.send, queued(queue)
            return
        socket = await self._attach(call_id)
        if socket is None:
            yield None
            return
        async with socket:  # graceful_close=true: a clean close of ours, the session going on
            yield socket_stream(socket)

    async def _hang_up_by_rest(self, session_id: str) -> bool:
        """``POST /live/sessions/{id}/hangup``: whether OpenAI took it (it may refuse a WebRTC one)."""
        try:
            await self.upstream.send("POST", f"live/sessions/{session_id}/hangup", "hang-up")
        except UpstreamError as exc:
            if exc.upstream_status == 404:
                return True  # gone meanwhile
            # It may bill on until OpenAI drops it: the operator must know which one.
            log.error("session %s may still be open: OpenAI confirmed no close (REST hangup: %s)", session_id, exc.code)
            return False
        log.info("session %s: session.close unconfirmed, ended by the REST hangup", session_id)
        return True

    async def _attach(self, session_id: str) -> aiohttp.ClientWebSocketResponse | None:
        """The session's sideband, or None if OpenAI has no such session (any more)."""
        url = websocket_url(self.settings.openai_base_url, "live", "sessions", session_id, "attach")
        headers = self.upstream.auth_headers()
        try:
            return await self._client().ws_connect(url.with_query(graceful_close="true"), headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 404:
                return None
            answer = Answer(exc.status, httpx.Headers(dict(exc.headers or {})), b"", complete=True)
            raise status_error(answer, "sideband") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise unreachable("sideband", exc) from None

    def _client(self) -> aiohttp.ClientSession:
        if self._sockets is None:
            # As many sidebands as calls can end at once (at shutdown, every call).
            self._sockets = websocket_client(self.settings, limit=max(16, self.settings.max_calls))
        return self._sockets


def _created(response: Answer) -> tuple[str | None, str | None]:
    """The session id and SDP answer of a create's ``201 {session: {id}, transport: {sdp}}``, each
    None if missing. A cut body still gives its id when what was read parses (padding)."""
    try:
        data = response.json()
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    session, transport = data.get("session"), data.get("transport")
    session_id = session.get("id") if isinstance(session, dict) else None
    sdp = transport.get("sdp") if isinstance(transport, dict) else None
    return (
        session_id if isinstance(session_id, str) and CALL_ID.fullmatch(session_id) else None,
        sdp if isinstance(sdp, str) and sdp.startswith("v=0") else None,
    )


def _check_id(call_id: str) -> None:
    if not CALL_ID.fullmatch(call_id):
        raise UpstreamError(404, "unknown_call", "That is not a session id OpenAI could have given.")
