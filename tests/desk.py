"""A venue's intranet for the webhook tests: it records what it is sent (the arguments and one
header) and answers as told; its errors echo the header, as a careless service's might."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from voicekiosk.tools.spec import Secret, WebhookSpec

# The booking tool's schema, as a config file would declare it.
PARAMETERS = {
    "type": "object",
    "properties": {"time": {"type": "string"}, "people": {"type": "integer", "minimum": 1}},
    "required": ["time"],
    "additionalProperties": False,
}


SECRET = "desk-secret-7c1e"  # the webhook's token, from the environment variable DESK_TOKEN
HEADER = "X-Desk-Token"
ARGUMENTS = {"time": "15:00", "people": 2}  # what the fake agent books


def book_tour(desk: TestServer, timeout: float = 0.5) -> WebhookSpec:
    """The ``book_tour`` webhook of ``desk``, its token by reference (set DESK_TOKEN to ``SECRET``)."""
    return WebhookSpec(
        name="book_tour",
        description="Book a guided tour for a visitor.",
        parameters=PARAMETERS,
        url=str(desk.make_url("/api/tours")),
        headers=((HEADER, Secret("DESK_TOKEN")),),
        timeout=timeout,
    )


class Desk:
    """``POST /api/tours`` books a tour; ``status`` and ``delay`` make it fail or dawdle."""

    def __init__(self, header: str = "Authorization") -> None:
        self.header = header
        self.received: list[tuple[dict[str, Any], str]] = []
        self.status = 200
        self.delay = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        secret = request.headers.get(self.header, "")
        self.received.append((await request.json(), secret))
        await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.json_response({"detail": f"boom {secret}"}, status=self.status)
        return web.json_response({"booked": True, "ref": "T-" + self.received[-1][0]["time"]})


async def serve_desk(aiohttp_server: Any, header: str = "Authorization") -> tuple[Desk, TestServer]:
    desk = Desk(header)
    app = web.Application()
    app.router.add_post("/api/tours", desk.handle)
    return desk, await aiohttp_server(app, host="127.0.0.1")
