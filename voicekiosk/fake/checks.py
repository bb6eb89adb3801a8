"""How the fake REST API reads request bodies and refuses them as OpenAI does: its error shape, the
refusal of the beta API, and the checks of a GA session and of ``expires_after``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from voicekiosk.fake.functions import check_tools, tools_refusal
from voicekiosk.fake.schema import Refusal


def error(
    status: int, code: str, message: str, *, param: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def beta_disabled() -> web.Response:
    return error(
        400,
        "beta_api_shape_disabled",
        "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
    )


def check_session(session: Any) -> str | None:
    """The first field of a GA session object that OpenAI would refuse, or None."""
    if not isinstance(session, dict):
        return "session"
    if session.get("type") != "realtime":
        return "session.type"
    if not isinstance(session.get("model"), str):
        return "session.model"
    for flat in ("voice", "modalities", "input_audio_transcription", "turn_detection", "temperature"):
        if flat in session:
            return f"session.{flat}"  # a beta (flat) field
    audio = session.get("audio", {})
    if not isinstance(audio, dict) or set(audio) - {"input", "output"}:
        return "session.audio"
    voice = audio.get("output", {}).get("voice")
    if voice is not None and not isinstance(voice, str):
        return "session.audio.output.voice"
    turn = audio.get("input", {}).get("turn_detection")
    if turn is not None and turn.get("type") not in ("server_vad", "semantic_vad"):
        return "session.audio.input.turn_detection.type"
    return check_tools(session)


def session_refusal(session: Any) -> Refusal | None:
    """What OpenAI answers to a GA session it refuses (a tool's refusal in its own words), or None."""
    problem = check_session(session)
    if problem is None:
        return None
    tools = tools_refusal(session) if isinstance(session, dict) else None
    if tools is not None and tools.param == problem:
        return tools
    return Refusal(400, "invalid_value", f"Invalid value for '{problem}'.", problem)


def refused(refusal: Refusal) -> web.Response:
    return error(refusal.status, refusal.code, refusal.message, param=refusal.param)


def check_expires(expires: Any) -> str | None:
    """``"expires_after"`` if OpenAI would refuse this ``expires_after`` of a client secret, else None."""
    if (
        not isinstance(expires, dict)
        or expires.get("anchor") != "created_at"
        or not isinstance(expires.get("seconds"), int)
        or not 10 <= expires["seconds"] <= 7200
    ):
        return "expires_after"
    return None


async def json_body(request: web.Request) -> Any:
    """The request's JSON, or None if it is not JSON."""
    try:
        return await request.json()
    except ValueError:
        return None


async def form_fields(request: web.Request) -> dict[str, str]:
    """A multipart body as text fields (files read and decoded)."""
    return {name: _field_text(value) for name, value in (await request.post()).items()}


def _field_text(value: Any) -> str:
    if isinstance(value, web.FileField):
        value = value.file.read()
    return value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)
