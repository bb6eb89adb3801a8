"""Who may talk: loopback always, other devices with the access token; and how often.

The agent costs money, so a device on the LAN needs the token from the terminal's QR code. It
arrives once as ``?token=``, becomes a Secure, HttpOnly, SameSite=Strict cookie, and the
redirect that sets it drops it from the URL (and so from history and screenshots).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import secrets
import time
from collections import deque
from pathlib import Path
from typing import NoReturn

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from yarl import URL

from voicekiosk import net
from voicekiosk.errors import ApiError, StartupError
from voicekiosk.redact import register_secret
from voicekiosk.settings import Settings

log = logging.getLogger("voicekiosk.access")
COOKIE = "voicekiosk_access"
TOKEN_FILE = "access-token"
PUBLIC_PREFIXES = ("/static/", "/healthz")


def token_path(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE


def load_token(data_dir: Path, *, rotate: bool = False) -> str:
    """The access token kept in the data directory, made on first use (or anew with ``rotate``).

    Raises:
      StartupError: the data directory or the token file cannot be written or read.
    """
    path = token_path(data_dir)
    try:
        if not rotate and path.exists():
            token = path.read_text(encoding="ascii").strip()
            if len(token) >= 16:
                register_secret(token)
                return token
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        token = secrets.token_urlsafe(18)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(token + "\n")
        tmp.replace(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(f"Cannot keep the access token in {data_dir}: {exc}") from None
    register_secret(token)
    return token


def host_of(header: str) -> str:
    """The host name or address of a Host header (no port, no brackets, lower case)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:
        header = header.rsplit(":", 1)[0]
    return header.rstrip(".")


class KnownHosts:
    """The names this server answers to. Anything else in a Host header is a DNS-rebinding
    attempt (a web page whose name now points at us, riding on loopback's trust) or a
    misconfigured proxy: refused."""

    REFRESH_EVERY = 10.0  # LAN addresses come and go (DHCP, Wi-Fi); look again at most this often

    def __init__(self, settings: Settings) -> None:
        fixed = [*net.loopback_names(), *net.host_names(), *settings.san]
        if not settings.binds_all:
            fixed.append(settings.host)
        self._fixed = {_canonical(name) for name in fixed}
        self._lan: set[str] = set()
        self._looked = -self.REFRESH_EVERY

    def __contains__(self, host: str) -> bool:
        host = _canonical(host)
        if host in self._fixed or host in self._lan:
            return True
        if time.monotonic() - self._looked >= self.REFRESH_EVERY:
            self._looked = time.monotonic()
            self._lan = {_canonical(a) for a in net.lan_addresses()}
        return host in self._lan


def _canonical(host: str) -> str:
    host = host.strip("[]").lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


class Access:
    """The Host check, the access token check and the per-client session rate limit."""

    def __init__(self, settings: Settings, token: str | None) -> None:
        self.settings = settings
        self.token = token
        self.hosts = KnownHosts(settings)
        self._starts: dict[str, deque[float]] = {}

    def allowed(self, request: web.Request) -> bool:
        if self.settings.open or self.token is None or net.is_loopback(request.remote):
            return True
        return self.matches(request.cookies.get(COOKIE))

    def matches(self, candidate: str | None) -> bool:
        if not candidate or self.token is None:
            return False
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def check_rate(self, client: str) -> None:
        """Count a new session for ``client``; over ``--rate`` a minute -> 429 with Retry-After."""
        now = time.monotonic()
        starts = self._starts.setdefault(client, deque())
        while starts and now - starts[0] >= 60:
            starts.popleft()
        if len(starts) >= self.settings.rate:
            wait = max(1, int(60 - (now - starts[0])) + 1)
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
            if host_of(request.host) not in self.hosts:
                log.warning("Refused %s %s for unknown host %r", request.method, request.path, request.host[:100])
                raise ApiError(421, "unknown_host", "This server does not answer to that name (add it with --san).")
            offered = request.query.get("token")
            if offered is not None:
                self._redeem(request, offered)
            if self.allowed(request) or request.path.startswith(PUBLIC_PREFIXES):
                return await handler(request)
            log.warning("Refused %s %s from %s: no valid access token", request.method, request.path, request.remote)
            if request.path.startswith("/api/"):
                raise ApiError(401, "unauthorized", "This device needs the access token: scan the QR code.")
            raise web.HTTPUnauthorized(text=DENIED_PAGE, content_type="text/html")

        return middleware

    def _redeem(self, request: web.Request, offered: str) -> NoReturn:
        """Swap a valid ``?token=`` for the cookie, and redirect to the same page without it."""
        # Only ever our own path: "//evil.example/?token=" must not redirect off-site.
        path = "/" + request.path.lstrip("/")
        kept = "&".join(part for part in request.query_string.split("&") if part and not part.startswith("token="))
        clean = URL.build(path=path, query_string=kept)
        if not self.matches(offered) and not self.allowed(request):
            log.warning("Refused a wrong access token from %s", request.remote)
            raise web.HTTPUnauthorized(text=DENIED_PAGE, content_type="text/html")
        response = web.HTTPFound(str(clean))
        if self.token is not None:
            response.set_cookie(
                COOKIE,
                self.token,
                max_age=400 * 24 * 3600,
                path="/",
                secure=request.secure,
                httponly=True,
                samesite="Strict",
            )
        log.info("Access granted to %s", request.remote)
        raise response


DENIED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>voicekiosk: access token needed</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main class="notice"><h1>This device needs the access token</h1>
<p>voicekiosk only talks to devices that have been let in, because every conversation costs money.</p>
<p>Scan the <strong>QR code shown in the voicekiosk terminal</strong>, or open the full link printed there
(it ends in <code>?token=…</code>). This device will then be remembered.</p></main></body></html>
"""
