"""Cross-cutting request handling: errors as JSON, same-origin writes, security headers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

from voicekiosk.errors import ApiError
from voicekiosk.logsafe import refused_by
from voicekiosk.settings import Settings

log = logging.getLogger("voicekiosk.server")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    421: "unknown_host",
    415: "unsupported_media_type",
    429: "too_many_requests",
}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def content_security_policy(settings: Settings, *, inline_scripts: Sequence[str] = ()) -> str:
    """Only our own origin (plus OpenAI's when the browser posts its offer there itself), and the
    inline scripts pinned by their ``'sha256-…'`` hashes."""
    connect = "'self'"
    if settings.sdp == "browser":
        parts = urlsplit(settings.openai_base_url)
        connect += f" {parts.scheme}://{parts.netloc}"
    scripts = " ".join(["'self'", *inline_scripts])
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self'; img-src 'self' data:; "
        f"media-src 'self' blob:; connect-src {connect}; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def error_response(error: ApiError) -> web.Response:
    body = {"error": {**error.details, "code": error.code, "message": error.message}}
    return web.json_response(body, status=error.status, headers=error.headers)


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API failure is ``{"error": {"code", "message"}}`` with the right status."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if not is_api(request) or exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        return error_response(ApiError(exc.status, code, exc.reason))
    except HttpProcessingError as exc:  # a malformed body (bad chunking, short Content-Length)
        log.warning("Bad request from %s: %s", request.remote, exc.message, extra=refused_by(request.remote))
        if not is_api(request):
            raise web.HTTPBadRequest() from None
        return error_response(ApiError(400, "bad_request", "The request was malformed."))
    except Exception:
        log.exception("Unexpected error on %s %s", request.method, request.path)
        if not is_api(request):
            raise
        return error_response(ApiError(500, "internal", "The server had an unexpected error."))


def same_origin(request: web.Request) -> bool:
    """True unless a browser says this request comes from another site."""
    origin = request.headers.get("Origin")
    if origin is None:
        # Browsers send Origin on every cross-site POST; without it, trust Fetch metadata.
        return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")
    parts = urlsplit(origin)
    return parts.scheme == request.scheme and parts.netloc.lower() == request.host.lower()


@web.middleware
async def origin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No cross-site minting: writes and WebSockets only from our own pages."""
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    if (request.method in UNSAFE_METHODS or upgrade) and not same_origin(request):
        log.warning(
            "Refused a cross-site %s %s from %s",
            request.method,
            request.path,
            request.remote,
            extra=refused_by(request.remote),
        )
        raise ApiError(403, "cross_origin", "Requests from other sites are not allowed.")
    return await handler(request)


def security_headers(csp: str) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _decorate(exc, request, csp)
            raise
        _decorate(response, request, csp)
        return response

    return middleware


def _decorate(response: web.StreamResponse, request: web.Request, csp: str) -> None:
    if response.prepared:
        return
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Permissions-Policy", "microphone=(self), camera=(), geolocation=()")
    headers.setdefault("Content-Security-Policy", csp)
    headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith("/static/"):
        # ES modules import each other by plain URL: revalidate (cheap 304s) so an upgraded
        # server never runs stale JS on a kiosk that stays up for weeks.
        headers.setdefault("Cache-Control", "no-cache")
    else:
        headers.setdefault("Cache-Control", "no-store")
