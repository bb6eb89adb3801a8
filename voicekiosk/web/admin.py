"""``/admin`` (the status page), ``/admin/status`` (its refresh), a call's hang-up from it, and
``/metrics`` (Prometheus). Who may reach them is ``admin_access.py``'s to say; ``add_watch`` wires
them and what they read into the app."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import aiohttp_jinja2
from aiohttp import web

from voicekiosk.errors import ApiError
from voicekiosk.tls.profile import CaInfo
from voicekiosk.upstream.engine import CALL_ID
from voicekiosk.watch import spend
from voicekiosk.watch.certs import Certificates
from voicekiosk.watch.metrics import CONTENT_TYPE, Metrics
from voicekiosk.watch.recent import RecentProblems
from voicekiosk.web.admin_status import status
from voicekiosk.web.appkeys import (
    ADMIN,
    CALLS,
    CERTIFICATES,
    ENGINE,
    EVENTS,
    METRICS,
    PROBLEMS,
    SETTINGS,
    STARTED,
    TOOLS,
)

log = logging.getLogger("voicekiosk.server")
REFRESH_MS = 2000  # how often an open status page asks for news
routes = web.RouteTableDef()


def add_watch(app: web.Application, ca: CaInfo | None) -> None:
    """The status page and the metrics, and what they read (after the upstream context: they
    observe its call registry, engine and tool runner)."""
    app[STARTED] = time.monotonic()
    app[CERTIFICATES] = certificates = Certificates(app[SETTINGS], ca)
    app[METRICS] = Metrics(app[SETTINGS], expiry=certificates.expiry, cost=lambda record: spend.call_cost(app, record))
    app[PROBLEMS] = RecentProblems()
    app.cleanup_ctx.append(_watch_ctx)
    app.router.add_routes(routes)


async def _watch_ctx(app: web.Application) -> AsyncIterator[None]:
    metrics = app[METRICS]
    app[CALLS].observe(metrics)
    app[ENGINE].upstream.observe(metrics)
    metrics.watch_pages(lambda: app[EVENTS].pages)
    if (runner := app[TOOLS]) is not None:
        runner.observe(metrics)
    app[PROBLEMS].attach()
    try:
        yield
    finally:
        app[PROBLEMS].detach()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


@routes.get("/admin")
async def admin_page(request: web.Request) -> web.Response:
    context = {"status": status(request.app), "form_token": request.app[ADMIN].form_token, "refresh_ms": REFRESH_MS}
    return aiohttp_jinja2.render_template("admin.html", request, context)


@routes.get("/admin/status")
async def admin_status(request: web.Request) -> web.Response:
    """The status, and the form token a Hang up must carry (a restarted server has a new one: an
    open page takes it from here, no reload needed)."""
    return web.json_response({**status(request.app), "form_token": request.app[ADMIN].form_token})


@routes.post("/admin/calls/{call_id}/hangup")
async def admin_hang_up(request: web.Request) -> web.StreamResponse:
    """Hang a call up from the status page (its form token required; a cross-site post is refused
    before this by ``origin_middleware``). The call's page is told first, so it rests instead of
    calling again; then the call is ended upstream, as ended by the admin."""
    form = await request.post()
    offered = form.get("form_token")
    request.app[ADMIN].check_form(offered if isinstance(offered, str) else request.headers.get("X-Form-Token"))
    call_id = request.match_info["call_id"]
    calls = request.app[CALLS]
    if not CALL_ID.fullmatch(call_id) or calls.get(call_id) is None:
        raise ApiError(404, "unknown_call", "No such call on this server (it may have ended already).")
    # hang_up tells the page first, and forgets the call before its first await: the page's own
    # hang-up, prompted by that, finds it gone, so the reason stays "admin".
    await calls.hang_up(call_id, reason="admin", by=f"the admin page ({request.remote or '?'})")
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"call_id": call_id, "status": "ended"})
    raise web.HTTPSeeOther("/admin")
