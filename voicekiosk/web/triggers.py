"""Triggers from outside: ``POST /api/announce``, ``/api/start``, ``/api/stop``.

A doorbell or a home automation acts on every kiosk page connected to this server (over their
``/api/events`` sockets). Who may: the same as the page's API (loopback, or the access token, as
the cookie or ``Authorization: Bearer``; ``access.py``; with ``--open``, loopback only), at the
same per-device rate as new sessions.
The text comes from the operator's request only, and is never logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from voicekiosk.errors import ApiError
from voicekiosk.logsafe import CONTROL_CHARS
from voicekiosk.web.access import is_local
from voicekiosk.web.appkeys import ACCESS, BUDGET, CALLS, EVENTS
from voicekiosk.web.opening import refuse_if_closed

log = logging.getLogger("voicekiosk.server")
MAX_ANNOUNCEMENT = 500  # characters: a sentence or three for the agent to say
MAX_BODY = 4 * 1024
routes = web.RouteTableDef()


@routes.post("/api/announce")
async def announce(request: web.Request) -> web.Response:
    """The agent says ``{"text": ...}`` on every kiosk (waking an idle one first)."""
    text = announcement(await json_object(request))
    return _send(request, {"type": "announce", "text": text}, "announce")


@routes.post("/api/start")
async def start(request: web.Request) -> web.Response:
    """Every idle or paused kiosk starts a call, as a visitor's tap does (greeted if configured)."""
    await json_object(request, optional=True)
    return _send(request, {"type": "start"}, "start")


@routes.post("/api/stop")
async def stop(request: web.Request) -> web.Response:
    """Every kiosk hangs its call up and waits, paused (a tap or a voice wakes it)."""
    await json_object(request, optional=True)
    return _send(request, {"type": "stop"}, "stop")


def announcement(body: dict[str, Any]) -> str:
    """The text to say, checked: a non-empty string of at most ``MAX_ANNOUNCEMENT`` printable characters."""
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "no_text", 'Send {"text": "..."}: what the agent should say.')
    text = text.strip()
    if len(text) > MAX_ANNOUNCEMENT:
        raise ApiError(413, "text_too_long", f"The text is longer than {MAX_ANNOUNCEMENT} characters.")
    if CONTROL_CHARS.search(text):
        raise ApiError(400, "bad_text", "The text has control characters (line breaks included): send plain text.")
    return text


def _send(request: web.Request, event: dict[str, str], what: str) -> web.Response:
    if request.app[ACCESS].settings.open and not is_local(request):
        # --open lets any device talk, but a kiosk in a public place must not say or do what any
        # phone on the LAN tells it: with no token to ask for, triggers come from this machine only.
        raise ApiError(403, "local_only", "With --open, triggers are accepted from this machine only.")
    if what == "start" or (what == "announce" and not len(request.app[CALLS])):
        refuse_if_closed(request)  # a closed kiosk is not woken: it would only be refused its call
        request.app[BUDGET].refuse_if_spent()  # nor one whose day's budget is spent
    hub = request.app[EVENTS]
    if not hub.pages:
        raise ApiError(409, "no_page", "No kiosk page is connected to this server.")
    request.app[ACCESS].check_rate(request.remote or "?")  # it may start a session on each page
    reached = hub.broadcast(event)
    if not reached:
        raise ApiError(503, "pages_busy", "The kiosk pages could not be told (their sockets are backed up).")
    log.info("%s sent to %d page(s) by %s", what, reached, request.remote or "?")
    return web.json_response({"status": "sent", "pages": reached}, status=202)


async def json_object(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object (``optional``: an empty body is ``{}``)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "too_large", "The body is larger than 4 KB.")
    body = await request.read()
    if len(body) > MAX_BODY:
        raise ApiError(413, "too_large", "The body is larger than 4 KB.")
    if optional and not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "not_json", "The body is not JSON.") from None
    if not isinstance(value, dict):
        raise ApiError(400, "not_json", "The body must be a JSON object.")
    return value
