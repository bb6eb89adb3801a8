"""Who may see ``/admin`` and ``/metrics``: this machine always; another device only with the admin
token, which is not the access token (a visitor's phone holds that one).

The admin token exists only once ``voicekiosk token --admin`` has made it (0600, in the data
directory): until then the status page and the metrics are this machine's alone. It is read again
whenever its file changes, so ``--rotate`` takes effect at once. Prometheus sends it as
``Authorization: Bearer``; a browser brings it once as ``?admin=``, which becomes a Secure,
HttpOnly, SameSite=Strict cookie for ``/admin`` only, and the redirect drops it from the URL.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import NoReturn

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from voicekiosk import datadir
from voicekiosk.errors import ApiError, StartupError
from voicekiosk.logsafe import refused_by
from voicekiosk.redact import register_secret
from voicekiosk.web.access import (
    ADMIN_TOKEN_FILE,
    bearer,
    is_admin_path,
    is_local,
    read_token,
    same_secret,
    without_param,
)

log = logging.getLogger("voicekiosk.access")
ADMIN_COOKIE = "voicekiosk_admin"
COOKIE_DAYS = 30


class AdminAccess:
    """The admin rule, and the form token (CSRF) the status page's writes must carry."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ADMIN_TOKEN_FILE
        self.form_token = secrets.token_urlsafe(18)  # per process: in the page, checked on each POST
        self._token: str | None = None
        self._stamp: tuple[int, int, int] | None = None

    def token(self) -> str | None:
        """The admin token as its file says now; None while there is none (or it is damaged)."""
        stamp = datadir.stamp(self.path)
        if stamp != self._stamp:
            self._stamp, self._token = stamp, None
            if stamp is not None:
                try:
                    self._token = read_token(self.path, admin=True)
                except StartupError as exc:
                    log.error("%s: /admin and /metrics are open to this machine only", exc)
                else:
                    register_secret(self._token)
        return self._token

    def allowed(self, request: web.Request) -> bool:
        if is_local(request):
            return True
        token = self.token()
        return same_secret(request.cookies.get(ADMIN_COOKIE), token) or same_secret(bearer(request), token)

    def check_form(self, offered: str | None) -> None:
        """A write from the status page must carry its form token.

        Raises:
          ApiError: 403 ``bad_form_token``.
        """
        if not same_secret(offered, self.form_token):
            raise ApiError(403, "bad_form_token", "Reload the admin page and try again.")

    def middleware(self) -> Middleware:
        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not is_admin_path(request.path):
                return await handler(request)
            offered = request.query.get("admin")
            if offered is not None:
                self._redeem(request, offered)
            if self.allowed(request):
                return await handler(request)
            log.warning(
                "Refused %s %s from %s: no valid admin token",
                request.method,
                request.path,
                request.remote,
                extra=refused_by(request.remote),
            )
            raise _refusal(request)

        return middleware

    def _redeem(self, request: web.Request, offered: str) -> NoReturn:
        """Swap a valid ``?admin=`` for the cookie, and redirect to the same page without it."""
        token = self.token()
        if not same_secret(offered, token):
            log.warning("Refused a wrong admin token from %s", request.remote, extra=refused_by(request.remote))
            raise _refusal(request)
        response = without_param(
            request, "admin", ADMIN_COOKIE, token or "", max_age=COOKIE_DAYS * 24 * 3600, path="/admin"
        )
        log.info("Admin access granted to %s", request.remote)
        raise response


def _refusal(request: web.Request) -> Exception:
    """The status page's own refusal page; JSON (with how to authenticate) for everything else."""
    if request.path == "/admin" and request.method == "GET":
        page = aiohttp_jinja2.render_string("admin_denied.html", request, {"days": COOKIE_DAYS})
        return web.HTTPUnauthorized(text=page, content_type="text/html")
    return ApiError(
        401,
        "unauthorized",
        "This needs the admin token (`voicekiosk token --admin` on the kiosk) or a request from the kiosk itself.",
        headers={"WWW-Authenticate": 'Bearer realm="voicekiosk admin"'},
    )
