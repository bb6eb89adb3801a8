"""Who may talk: loopback always, other devices with the access token; and how often.

The agent costs money, so a device on the LAN needs the token from the terminal's QR code. It
arrives once as ``?token=``, becomes a Secure, HttpOnly, SameSite=Strict cookie, and the
redirect that sets it drops it from the URL (and so from history and screenshots).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import deque
from pathlib import Path
from typing import NoReturn

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from yarl import URL

from voicekiosk import datadir, net
from voicekiosk.errors import ApiError, StartupError
from voicekiosk.logsafe import refused_by
from voicekiosk.redact import register_secret
from voicekiosk.settings import Settings

log = logging.getLogger("voicekiosk.access")
COOKIE = "voicekiosk_access"
TOKEN_FILE = "access-token"
ADMIN_TOKEN_FILE = "admin-token"  # /admin and /metrics from elsewhere (``admin_access.py``): made only when asked for
PUBLIC_PREFIXES = ("/static/", "/brand/", "/healthz")  # /brand/: the venue's look, on the "token needed" page too
# A request relayed by a proxy on this machine comes from loopback, whoever sent it: one carrying
# any of these headers, or any ``X-Forwarded-*`` (``-Proto``, ``-Port``: what nginx and Caddy add), is
# never this machine's. A proxy that adds none cannot be told apart (README, "Behind a reverse proxy").
PROXY_HEADERS = ("Forwarded", "X-Real-IP")
PROXY_PREFIX = "x-forwarded-"


def load_token(data_dir: Path, *, rotate: bool = False, admin: bool = False) -> str:
    """The access token (``admin``: the admin token) kept in the data directory, made on first use
    (or anew with ``rotate``).

    Raises:
      StartupError: the data directory is not private, or the token file cannot be written, or
        exists but cannot be read or is damaged (never silently replaced: every device would
        be locked out).
    """
    datadir.ensure_dir(data_dir)
    path = data_dir / (ADMIN_TOKEN_FILE if admin else TOKEN_FILE)
    with datadir.locked(data_dir):
        if rotate or not path.exists():
            token = secrets.token_urlsafe(24 if admin else 18)
            datadir.write_atomic(path, (token + "\n").encode("ascii"), 0o600)
        else:
            token = read_token(path, admin=admin)
    register_secret(token)
    return token


def read_token(path: Path, *, admin: bool = False) -> str:
    """The token in ``path`` (``admin``: the admin token's file).

    Raises:
      StartupError: it cannot be read, or is too short to be one of ours.
    """
    what, rotate = ("admin token", "token --admin --rotate") if admin else ("access token", "token --rotate")
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(f"Cannot read the {what} {path}: {exc}") from None
    if len(token) < 16 or not token.isprintable() or " " in token:
        raise StartupError(
            f"The {what} {path} is damaged: restore it from a backup, or run `voicekiosk {rotate}`"
            + ("" if admin else " (every device must then scan the new QR code)")
        )
    return token


def same_secret(candidate: str | None, token: str | None) -> bool:
    """``candidate`` is ``token``, compared in constant time (no timing tells how much matched)."""
    if not candidate or not token:
        return False
    return hmac.compare_digest(candidate.encode(), token.encode())


def is_admin_path(path: str) -> bool:
    """``/admin`` and ``/metrics``: guarded by the admin token (``admin_access.py``), never by the
    access token alone."""
    return path in ("/admin", "/metrics") or path.startswith("/admin/")


class Access:
    """The access token check and the per-client session rate limit."""

    def __init__(self, settings: Settings, token: str | None) -> None:
        self.settings = settings
        self.token = token
        self._starts: dict[str, deque[float]] = {}

    def allowed(self, request: web.Request) -> bool:
        if self.settings.open or self.token is None or is_local(request):
            return True
        # The page carries the cookie; an automation (``/api/announce``) the header.
        return self.matches(request.cookies.get(COOKIE)) or self.matches(bearer(request))

    def matches(self, candidate: str | None) -> bool:
        return same_secret(candidate, self.token)

    def check_rate(self, client: str) -> None:
        """Count a new session for ``client``; over ``--rate`` a minute -> 429 with Retry-After."""
        now = time.monotonic()
        starts = self._starts.setdefault(net.device_of(client), deque())
        while starts and now - starts[0] >= 60:
            starts.popleft()
        if len(starts) >= self.settings.rate:
            wait = max(1, int(60 - (now - starts[0])) + 1)
            log.warning("Refused a new session from %s: over --rate", client, extra=refused_by(client))
            raise ApiError(
                429,
                "too_many_requests",
                f"Too many new sessions from this device; try again in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        starts.append(now)
        if len(self._starts) > 10_000:  # bounded memory whatever the clients do
            self._starts = {k: v for k, v in self._starts.items() if v and now - v[-1] < 60}

    def middleware(self) -> Middleware:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            offered = request.query.get("token")
            if offered is not None:
                self._redeem(request, offered)
            path = request.path
            if self.allowed(request) or path.startswith(PUBLIC_PREFIXES) or is_admin_path(path):
                return await handler(request)
            log.warning(
                "Refused %s %s from %s: no valid access token",
                request.method,
                request.path,
                request.remote,
                extra=refused_by(request.remote),
            )
            if request.path.startswith("/api/"):
                raise ApiError(401, "unauthorized", "This device needs the access token: scan the QR code.")
            raise _denied(request)

        return middleware

    def _redeem(self, request: web.Request, offered: str) -> NoReturn:
        """Swap a valid ``?token=`` for the cookie, and redirect to the same page without it."""
        if not self.matches(offered) and not self.allowed(request):
            log.warning("Refused a wrong access token from %s", request.remote, extra=refused_by(request.remote))
            raise _denied(request)
        response = without_param(request, "token", COOKIE, self.token, max_age=400 * 24 * 3600, path="/")
        log.info("Access granted to %s", request.remote)
        raise response


def without_param(
    request: web.Request, param: str, cookie: str, value: str | None, *, max_age: int, path: str
) -> web.HTTPFound:
    """A redirect to the same page without ``?param=``, setting ``cookie`` to ``value`` (none when
    None): HttpOnly, SameSite=Strict, Secure over HTTPS, for ``path`` only."""
    # Only ever our own path: "//evil.example/?token=" must not redirect off-site.
    own = "/" + request.path.lstrip("/")
    kept = "&".join(part for part in request.query_string.split("&") if part and not part.startswith(f"{param}="))
    response = web.HTTPFound(str(URL.build(path=own, query_string=kept)))
    if value is not None:
        response.set_cookie(
            cookie, value, max_age=max_age, path=path, secure=request.secure, httponly=True, samesite="Strict"
        )
    return response


def is_local(request: web.Request) -> bool:
    """From this machine itself: loopback, and not relayed by a proxy (see README, "Behind a reverse proxy")."""
    return net.is_loopback(request.remote) and not _relayed(request)


def from_this_machine(request: web.Request) -> bool:
    """As ``is_local``, or from one of this machine's own addresses (a kiosk opened at ``--host``):
    the connection's two ends are the same address."""
    own = request.transport.get_extra_info("sockname") if request.transport else None
    return is_local(request) or (isinstance(own, tuple) and request.remote == own[0] and not _relayed(request))


def _relayed(request: web.Request) -> bool:
    return any(name in request.headers for name in PROXY_HEADERS) or any(
        name.lower().startswith(PROXY_PREFIX) for name in request.headers
    )


def bearer(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _denied(request: web.Request) -> web.HTTPUnauthorized:
    """The page a device without the token sees: how to get let in."""
    return web.HTTPUnauthorized(text=aiohttp_jinja2.render_string("denied.html", request, {}), content_type="text/html")
