"""What the server says to a GPT-Live session on its sideband (``openai-live.md`` §2.4, §4), each until
OpenAI confirms it: ``session.close`` until ``session.closed``, an instructions append until
``session.instructions.appended``. A ``Stream`` is the sideband the server keeps for tools or a
fresh ``attach``: how to send, and the events from now on (ending when the socket goes).
Nothing received reaches a log line unescaped."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from voicekiosk.errors import UpstreamError
from voicekiosk.ledger.prices import billed_seconds
from voicekiosk.upstream.http import safe_code

log = logging.getLogger("voicekiosk.upstream")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Stream = tuple[Send, AsyncIterator[dict[str, Any]]]


async def close_session(stream: Stream, session_id: str) -> float | None:
    """Send ``session.close`` until ``session.closed`` (or the socket's end); the seconds it
    billed, if it said. A close refused before ``session.started`` (the page is still
    connecting) is sent again once it comes."""
    send, events = stream
    event_id = "close_" + secrets.token_hex(8)
    close = {"type": "session.close", "event_id": event_id}
    await send(close)
    refused = False
    async for event in events:
        kind = event.get("type")
        if kind == "session.closed":
            seconds = billed(event)
            log.info("session %s closed: %s", session_id, _reason(event))
            return seconds
        if kind == "session.started" and refused:
            refused = False
            await send(close)
        elif kind == "error" and _refers_to(event, event_id):
            refused = True
    log.info("session %s: its sideband closed without session.closed", session_id)
    return None


async def append_instructions(stream: Stream, content: str) -> None:
    """Send ``session.instructions.append`` (a trusted standing rule, §2.4) and wait for its ack:
    the ``session.instructions.appended`` naming it (or naming none: open question 4; only the
    server appends instructions, the page's channel may not).

    Raises:
      UpstreamError: OpenAI refused it (502, its code kept), or the session ended first (404).
    """
    send, events = stream
    event_id = "rule_" + secrets.token_hex(8)
    await send({"type": "session.instructions.append", "event_id": event_id, "delegation_id": None, "content": content})
    async for event in events:
        kind = event.get("type")
        if kind == "session.instructions.appended" and event.get("client_event_id") in (event_id, None):
            return
        if kind == "error" and _refers_to(event, event_id):
            code = safe_code(event["error"].get("code"))
            log.warning("OpenAI refused an instructions append: %s", code or "?")
            raise UpstreamError(502, "upstream_rejected", "OpenAI refused the instructions.", upstream_code=code)
        if kind == "session.closed":
            break
    raise UpstreamError(404, "unknown_call", "The session ended before it took the instructions.")


def billed(event: dict[str, Any]) -> float | None:
    """``usage.seconds`` of a ``session.closed`` or ``session.usage.updated`` (cumulative), if sane."""
    usage = event.get("usage")
    return billed_seconds(usage.get("seconds")) if isinstance(usage, dict) else None


def socket_stream(socket: aiohttp.ClientWebSocketResponse) -> Stream:
    """A fresh attach as a ``Stream``."""

    async def send(event: dict[str, Any]) -> None:
        await socket.send_str(json.dumps(event))

    async def received() -> AsyncIterator[dict[str, Any]]:
        async for message in socket:
            yield _event(message)

    return send, received()


async def queued(queue: asyncio.Queue[dict[str, Any] | None]) -> AsyncIterator[dict[str, Any]]:
    """A sideband's tap (``Sideband.tap``) as a ``Stream``'s events."""
    while (event := await queue.get()) is not None:
        yield event


def _reason(event: dict[str, Any]) -> str:
    reason = event.get("reason")
    return reason if isinstance(reason, str) and reason.isidentifier() else "?"


def _event(message: aiohttp.WSMessage) -> dict[str, Any]:
    if message.type is not aiohttp.WSMsgType.TEXT:
        return {}
    try:
        event = json.loads(message.data)
    except (ValueError, RecursionError):
        return {}
    return event if isinstance(event, dict) else {}


def _refers_to(event: dict[str, Any], event_id: str) -> bool:
    error = event.get("error")
    return isinstance(error, dict) and error.get("client_event_id") == event_id
