"""Opening hours on the web: what pages are told (``GET /api/hours``, and ``hours`` in the page
config), and the refusal of every new session while closed (each endpoint that would start a
billed call, or wake a kiosk to make one, asks ``refuse_if_closed`` first)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from voicekiosk.errors import ApiError
from voicekiosk.web.appkeys import CLOCK, SETTINGS

routes = web.RouteTableDef()


def hours_state(request: web.Request) -> dict[str, Any] | None:
    """``Hours.state`` by this server's clock; None: always open."""
    hours = request.app[SETTINGS].hours
    return None if hours is None else hours.state(request.app[CLOCK]())


def refuse_if_closed(request: web.Request) -> None:
    """403 ``closed`` (with ``opens``, ISO) outside the opening hours."""
    hours = request.app[SETTINGS].hours
    now = request.app[CLOCK]()
    if hours is None or hours.is_open(now):
        return
    opens = hours.next_change(now)
    when = f"it opens {opens:%a %Y-%m-%d %H:%M}" if opens else "it does not open again"
    raise ApiError(
        403,
        "closed",
        f"The kiosk is closed now ({hours}): {when}.",
        details={"opens": opens.isoformat(timespec="seconds") if opens else None},
    )


@routes.get("/api/hours")
async def opening_hours(request: web.Request) -> web.Response:
    """Open or not now, the week, and when that next changes (null: always open)."""
    return web.json_response(hours_state(request), headers={"Cache-Control": "no-store"})
