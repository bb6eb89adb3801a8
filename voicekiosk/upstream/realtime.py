"""The Realtime engine: mint ephemeral keys, exchange SDP for calls, hang calls up (GA API)."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from voicekiosk.errors import ApiError, UpstreamError
from voicekiosk.settings import Settings
from voicekiosk.tools.prompt import with_languages, with_tools
from voicekiosk.upstream.engine import CALL_ID, Call, Ended, end_unusable
from voicekiosk.upstream.http import JSON_BODY, UpstreamClient, json_object, malformed, too_large
from voicekiosk.upstream.record import CallRecord

log = logging.getLogger("voicekiosk.upstream")


@dataclass(frozen=True)
class ClientSecret:
    value: str
    expires_at: int
    model: str
    upstream_ms: float


class Minter(Protocol):
    """What ``/api/token`` needs (``--sdp browser``): only the Realtime engine has ephemeral keys."""

    async def create_client_secret(self) -> ClientSecret: ...


def transcription(settings: Settings, language: str | None = None) -> dict[str, Any]:
    """The session's ``audio.input.transcription``; ``language``: the visitor picked it (the page
    sends this in a ``session.update`` then)."""
    return {"model": settings.transcription_model} | ({"language": language} if language else {})


def session_config(settings: Settings, tools: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The GA session object sent with every mint and every call; ``tools``: the function tools the
    server runs (only in server SDP mode, where it has the call's sideband) and the remote MCP
    servers OpenAI calls itself (either mode)."""
    turn: dict[str, Any] = {
        "type": settings.turn_detection,
        "create_response": True,
        "interrupt_response": True,
    }
    if settings.turn_detection == "semantic_vad":
        turn["eagerness"] = "auto"
    noise = None if settings.noise_reduction == "off" else {"type": settings.noise_reduction}
    session: dict[str, Any] = {
        "type": "realtime",
        "model": settings.model,
        "instructions": with_tools(
            with_languages(settings.instructions, settings.languages), [str(tool.get("name", "")) for tool in tools]
        ),
        "audio": {
            "input": {
                "transcription": transcription(settings),
                "turn_detection": turn,
                "noise_reduction": noise,
            },
            "output": {"voice": settings.voice},
        },
    }
    if tools:
        session |= {"tools": list(tools), "tool_choice": "auto"}
    return session


class RealtimeBroker:
    """The Realtime ``Engine`` (and the ephemeral-key mint of ``--sdp browser``), through one
    ``UpstreamClient``."""

    name = "realtime"
    max_session = 60 * 60.0  # OpenAI ends a Realtime session at 60 minutes

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        tools: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.settings = settings
        self.upstream = UpstreamClient(settings, transport=transport)
        self._session = session_config(settings, tools)
        # Encoded once: every mint and call sends the same session.
        self._mint_body = json.dumps(
            {"expires_after": {"anchor": "created_at", "seconds": settings.token_ttl}, "session": self._session}
        ).encode()
        self._boundary = "voicekiosk-" + secrets.token_hex(12)
        self._session_part = (
            f'--{self._boundary}\r\nContent-Disposition: form-data; name="session"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(self._session)}\r\n--{self._boundary}--\r\n"
        ).encode()

    async def instruct(self, call_id: str, rule: str) -> None:
        """The page tells a Realtime session the visitor's language on its own channel (a system
        message); the server has no channel of its own to a call without tools."""
        raise ApiError(409, "not_supported", "On the Realtime engine the page tells its session itself.")

    def minutes(self, record: CallRecord) -> None:
        """Realtime bills tokens, not minutes."""
        return None

    async def aclose(self) -> None:
        await self.upstream.aclose()

    async def create_client_secret(self) -> ClientSecret:
        """Mint an ephemeral key (GA ``POST /realtime/client_secrets``)."""
        response, ms = await self.upstream.send(
            "POST", "realtime/client_secrets", "mint", content=self._mint_body, headers=JSON_BODY
        )
        data = json_object(response, "mint")
        value, expires_at = data.get("value"), data.get("expires_at")
        if not isinstance(value, str) or not value or not isinstance(expires_at, int):
            raise malformed("mint", "no key in the answer")
        session = data.get("session")
        model = session.get("model") if isinstance(session, dict) else None
        return ClientSecret(value, expires_at, model if isinstance(model, str) else self.settings.model, ms)

    async def create_call(self, offer_sdp: str) -> Call:
        """Exchange the browser's SDP offer for OpenAI's answer (GA unified interface)."""
        offer = offer_sdp.encode()
        if self._boundary.encode() in offer:
            raise UpstreamError(400, "bad_sdp", "The SDP offer cannot be sent as it is.")
        body = (
            (
                f'--{self._boundary}\r\nContent-Disposition: form-data; name="sdp"\r\n'
                "Content-Type: application/sdp\r\n\r\n"
            ).encode()
            + offer
            + b"\r\n"
            + self._session_part
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={self._boundary}", "Accept": "application/sdp"}
        response, ms = await self.upstream.send("POST", "realtime/calls", "call", content=body, headers=headers)
        call_id = _call_id(response.headers.get("location", ""))
        answer = response.text
        if not response.complete or not answer.startswith("v=0"):
            if call_id is not None:
                await end_unusable(self, call_id)
            raise too_large("call") if not response.complete else malformed("call", "the answer is not SDP")
        if call_id is None:
            log.warning("OpenAI answered the call without a usable Location; it cannot be hung up")
        return Call(call_id, answer, ms)

    async def hang_up(self, call_id: str) -> Ended:
        """End a call (``POST /realtime/calls/{id}/hangup``). A call already gone is fine."""
        if not CALL_ID.fullmatch(call_id):
            raise UpstreamError(404, "unknown_call", "That is not a call id OpenAI could have given.")
        try:
            _, ms = await self.upstream.send("POST", f"realtime/calls/{call_id}/hangup", "hang-up")
        except UpstreamError as exc:
            if exc.upstream_status == 404:
                return Ended()
            raise
        return Ended(ms)


def _call_id(location: str) -> str | None:
    """The call id at the end of OpenAI's ``Location`` header, if it looks like one."""
    call_id = location.rstrip("/").rsplit("/", 1)[-1]
    return call_id if CALL_ID.fullmatch(call_id) else None
