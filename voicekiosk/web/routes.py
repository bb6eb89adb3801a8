"""HTTP handlers: the page, its config, the key broker endpoints and the health check."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from voicekiosk import __version__, net
from voicekiosk.errors import ApiError, UpstreamError
from voicekiosk.languages import invitations, page_languages, table, translate
from voicekiosk.ledger.prices import billed_seconds
from voicekiosk.redact import redact
from voicekiosk.settings import Settings
from voicekiosk.tools.prompt import chosen_language
from voicekiosk.upstream.realtime import transcription
from voicekiosk.upstream.record import EndReason
from voicekiosk.web.appkeys import ACCESS, BUDGET, CA, CALLS, ENGINE, EVENTS, HOSTS, MINTER, SETTINGS, STATIC
from voicekiosk.web.hosts import host_of
from voicekiosk.web.middleware import content_security_policy
from voicekiosk.web.opening import hours_state, refuse_if_closed
from voicekiosk.web.triggers import json_object

log = logging.getLogger("voicekiosk.server")
MAX_SDP_BYTES = 64 * 1024
routes = web.RouteTableDef()


def client_of(request: web.Request) -> str:
    return request.remote or "?"


def page_config(request: web.Request) -> dict[str, Any]:
    """What the page needs to know; no secret, no hard-coded OpenAI URL in static files."""
    settings = request.app[SETTINGS]
    return {
        "version": __version__,
        "engine": settings.engine,  # which event adapter the page uses (realtime.js, live.js)
        "sdp": settings.sdp,
        "model": settings.model,
        "voice": settings.voice,
        "greeting": settings.greeting,
        # The page's words (languages.py): the default language's table inlined for the first
        # paint, the others fetched from i18n_url when chosen.
        "language": settings.languages[0],
        "languages": [language_choice(settings, language) for language in page_languages(settings.languages)],
        "strings": table(settings.languages[0]),
        "i18n_url": "/static/i18n/",
        "invitations": invitations(settings.languages),
        "autostart": settings.autostart,
        "idle_timeout": settings.idle_timeout,
        "dim_after": settings.dim_after,
        "kiosk": False,  # the page's kiosk behaviours (static/kiosk.js): opened with ?kiosk
        "hours": hours_state(request),  # null: always open; else refreshed from hours_url (static/hours.js)
        "hours_url": "/api/hours",
        "api_key": bool(settings.api_key),
        "demo": settings.demo,
        "call_url": "/api/call",
        "token_url": "/api/token",
        "events_url": "/api/events",
        "calls_url": settings.calls_url if settings.sdp == "browser" else None,
        # The setup site on the host this page was opened at, if there is one.
        "setup_url": settings.setup_url(host_of(request.host) or "localhost"),
    }


def language_choice(settings: Settings, language: dict[str, str]) -> dict[str, Any]:
    """A language the visitor may pick: its code and name; on Realtime also what the page tells the
    session then (on Live the server tells it: ``call_language``)."""
    choice: dict[str, Any] = dict(language)
    if settings.engine == "realtime":
        choice["say"] = chosen_language(language["code"])
        choice["transcription"] = transcription(settings, language["code"])
    return choice


def phone_setup_url(request: web.Request) -> str | None:
    """Where a phone finds the setup site: on a kiosk's own screen (opened at localhost), the
    first LAN address, since a phone cannot reach this machine's loopback."""
    settings = request.app[SETTINGS]
    host = host_of(request.host) or "localhost"
    if net.is_loopback(host) and settings.binds_all:
        host = next(iter(request.app[HOSTS].lan_addresses()), host)
    return settings.setup_url(host)


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    boot = request.app[STATIC].get("boot.js")
    if boot is None:
        raise web.HTTPInternalServerError(text="voicekiosk's static/boot.js is missing; reinstall voicekiosk")
    config = page_config(request)
    config["autostart"] = config["autostart"] or "autostart" in request.query
    config["kiosk"] = "kiosk" in request.query
    context = {
        "config": config,
        "boot_js": Markup(boot.body.decode()),
        "ca": request.app[CA],
        "phone_setup_url": phone_setup_url(request),
        "lang": config["language"],
        "languages": config["languages"],
        "t": partial(translate, config["language"]),
    }
    response = aiohttp_jinja2.render_template("index.html", request, context)
    # boot.js is inlined so the call starts before the modules load; its hash lets it run.
    response.headers["Content-Security-Policy"] = content_security_policy(
        request.app[SETTINGS], inline_scripts=[boot.csp_hash]
    )
    return response


@routes.get("/api/config")
async def config(request: web.Request) -> web.Response:
    return web.json_response(page_config(request))


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    openai = "demo" if settings.demo else ("configured" if settings.api_key else "no_api_key")
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "engine": settings.engine,
            "openai": openai,
            "calls": len(request.app[CALLS]),
        }
    )


@routes.post("/api/token")
async def token(request: web.Request) -> web.Response:
    """Mint an ephemeral key for a page that posts its own offer (``--sdp browser``)."""
    settings = request.app[SETTINGS]
    if settings.sdp != "browser":
        raise ApiError(403, "sdp_mode_server", "This server exchanges SDP itself (--sdp server): use /api/call.")
    minter = request.app[MINTER]
    if minter is None:
        raise ApiError(403, "sdp_mode_server", "This engine has no browser keys: use /api/call.")
    await request.read()  # any body is ignored, but its size is still capped
    admit_session(request)
    try:
        with request.app[CALLS].line():
            secret = await minter.create_client_secret()
    except UpstreamError as exc:
        _log_failure(request, "mint", exc)
        raise
    log.info("mint %s for %s (%.0f ms upstream)", redact(secret.value), client_of(request), secret.upstream_ms)
    return web.json_response(
        {
            "value": secret.value,
            "expires_at": secret.expires_at,
            "model": secret.model,
            "calls_url": settings.calls_url,
            # Sent back with the call's id over /api/events: how this page registers its call.
            "claim": request.app[CALLS].tickets.issue(),
        }
    )


@routes.post("/api/call")
async def create_call(request: web.Request) -> web.Response:
    """Post the browser's SDP offer upstream with the real key; answer with OpenAI's SDP."""
    if request.content_type != "application/sdp":
        raise ApiError(415, "not_sdp", "Send the SDP offer as application/sdp.")
    offer = await _read_sdp(request)
    admit_session(request)
    try:
        with request.app[CALLS].line():
            call = await request.app[ENGINE].create_call(offer)
    except UpstreamError as exc:
        _log_failure(request, "call", exc)
        raise
    headers = {}
    if call.call_id:
        request.app[CALLS].add(call.call_id, client_of(request))
        headers["Location"] = f"/api/call/{call.call_id}"
    log.info("call %s from %s (%.0f ms upstream)", call.call_id or "?", client_of(request), call.upstream_ms)
    return web.Response(status=201, text=call.answer_sdp, content_type="application/sdp", headers=headers)


@routes.get("/api/events")
async def events(request: web.Request) -> web.WebSocketResponse:
    """The page's WebSocket for transcripts, turn timings and usage (shown in the terminal)."""
    return await request.app[EVENTS].handle(request)


@routes.delete("/api/call/{call_id}")
async def hang_up(request: web.Request) -> web.Response:
    call_id = request.match_info["call_id"]
    if request.app[CALLS].get(call_id) is None:
        raise ApiError(404, "unknown_call", "No such call on this server (it may have ended already).")
    # The page's last count of billed seconds, if it has one (its final usage came just now).
    seconds = billed_seconds(_float(request.query.get("seconds")))
    reason: EndReason = "idle" if request.query.get("reason") == "idle" else "page"  # nobody spoke
    await request.app[CALLS].hang_up(call_id, reason=reason, by=client_of(request), page_seconds=seconds)
    return web.json_response({"call_id": call_id, "status": "ended"})


@routes.post("/api/call/{call_id}/language")
async def call_language(request: web.Request) -> web.Response:
    """The visitor picked ``{"code": ...}``, one of ``languages``: the server appends its own
    sentence for it to the call's instructions (the page's channel may not append rules). Only the
    device that made the call may."""
    call_id = request.match_info["call_id"]
    record = request.app[CALLS].get(call_id)
    if record is None:
        raise ApiError(404, "unknown_call", "No such call on this server (it may have ended already).")
    if net.device_of(record.client) != net.device_of(client_of(request)):
        raise ApiError(403, "not_your_call", "Only the device that made this call may change its language.")
    code = (await json_object(request)).get("code")
    offered = request.app[SETTINGS].languages
    if not isinstance(code, str) or code not in offered:
        raise ApiError(400, "unknown_language", f'Send {{"code": ...}}, one of: {", ".join(offered)}.')
    if record.instructing:  # each append opens a connection upstream: a page may not pile them up
        raise ApiError(409, "busy", "The call's language is being changed already: try again in a moment.")
    record.instructing = True
    try:
        await request.app[ENGINE].instruct(call_id, chosen_language(code))
    except UpstreamError as exc:
        _log_failure(request, "language", exc)
        raise
    finally:
        record.instructing = False
    log.info("call %s: the visitor chose %s", call_id, code)
    return web.json_response({"call_id": call_id, "language": code})


def _float(raw: str | None) -> float | None:
    try:
        return float(raw or "")
    except ValueError:
        return None


def admit_session(request: web.Request) -> None:
    """Refuse a new session outside the opening hours (403), once the day's budget is spent (402) or
    over the per-client rate (429); lines are held by ``CallRegistry.line``."""
    refuse_if_closed(request)
    request.app[BUDGET].refuse_if_spent()
    request.app[ACCESS].check_rate(client_of(request))


async def _read_sdp(request: web.Request) -> str:
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise ApiError(413, "too_large", "The SDP offer is larger than 64 KB.")
    body = await request.read()
    if len(body) > MAX_SDP_BYTES:
        raise ApiError(413, "too_large", "The SDP offer is larger than 64 KB.")
    try:
        offer = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_sdp", "The SDP offer is not UTF-8 text.") from None
    if not offer.startswith("v=0") or "m=audio" not in offer:
        raise ApiError(400, "bad_sdp", "The body is not an SDP offer with an audio section.")
    return offer


def _log_failure(request: web.Request, what: str, exc: UpstreamError) -> None:
    log.error(
        "%s for %s failed: %s (upstream %s %s)",
        what,
        client_of(request),
        exc.code,
        exc.upstream_status or "-",
        exc.upstream_code or "",
    )
