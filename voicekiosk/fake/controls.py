"""``FakeOpenAI``'s own routes, ``/_fake/...``: what tests, benchmarks and the soak steer it with
(faults, latency, drops, talk, reset) and read from it (stats). Not OpenAI's: never on a real API."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from aiohttp import web

from voicekiosk.fake.answerers import Answerer
from voicekiosk.fake.checks import error, json_body
from voicekiosk.fake.faults import Fault, fault_from_json


class Host(Protocol):
    """What the control routes use of ``FakeOpenAI``."""

    answerer: Answerer
    live: Answerer
    latency: float
    faults: list[Fault]
    counts: Counter[str]
    made: Counter[str]

    @property
    def connections(self) -> int: ...


class ControlRoutes:
    """``/_fake/faults``, ``/_fake/stats``, ``/_fake/say``, ``/_fake/reset`` and ``/_fake/drop``."""

    def __init__(self, fake: Host) -> None:
        self.fake = fake

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/_fake/faults", self._set_faults)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_post("/_fake/say", self._say)
        app.router.add_post("/_fake/reset", self._reset)
        app.router.add_post("/_fake/drop", self._drop)

    async def _set_faults(self, request: web.Request) -> web.Response:
        """``{"latency_ms": 150, "faults": [{"endpoint": "calls", "status": 503, "seconds": 30}, ...]}``:
        the faults replace those set before; each field as ``Fault`` has it, checked strictly."""
        body = await json_body(request)
        if not isinstance(body, dict) or set(body) - {"latency_ms", "faults"}:
            return error(400, "invalid_json", "Expected a JSON object with 'latency_ms' and/or 'faults'.")
        latency, faults = body.get("latency_ms", self.fake.latency * 1000), body.get("faults", [])
        if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not 0 <= latency <= 60_000:
            return error(400, "invalid_value", "'latency_ms' must be a number from 0 to 60000.", param="latency_ms")
        if not isinstance(faults, list):
            return error(400, "invalid_value", "'faults' must be a list.", param="faults")
        try:
            parsed = [fault_from_json(f) for f in faults]
        except ValueError as exc:
            return error(400, "invalid_value", str(exc), param="faults")
        self.fake.latency = float(latency) / 1000
        if "faults" in body:
            self.fake.faults = parsed
        return web.json_response({"latency_ms": self.fake.latency * 1000, "faults": len(self.fake.faults)})

    async def _stats(self, request: web.Request) -> web.Response:
        """Connections, requests per endpoint, calls answered (``made``) and still open, by engine."""
        open_calls = {"realtime": _open_calls(self.fake.answerer), "live": _open_calls(self.fake.live)}
        return web.json_response(
            {
                "connections": self.fake.connections,
                "requests": dict(self.fake.counts),
                "made": dict(self.fake.made),
                "open": open_calls,
            }
        )

    async def _say(self, request: web.Request) -> web.Response:
        """``{"seconds": 12, "engine": "realtime" (default) | "live"}``: that engine's newest call
        talks that long (benchmarks)."""
        body = await json_body(request)
        if not isinstance(body, dict) or set(body) - {"seconds", "engine"}:
            body = {"engine": None}
        answerer = {"realtime": self.fake.answerer, "live": self.fake.live}.get(str(body.get("engine", "realtime")))
        say, seconds = getattr(answerer, "say", None), body.get("seconds", 10)
        if say is None or type(seconds) not in (int, float) or not 0 < seconds <= 600:
            message = "Expected {'seconds': 1-600, 'engine'?: 'realtime' | 'live'} and a talking answerer."
            return error(400, "invalid_value", message)
        call_id = say(float(seconds))
        if call_id is None:
            return error(404, "call_id_not_found", "No open call.")
        return web.json_response({"call_id": call_id, "seconds": seconds})

    async def _reset(self, request: web.Request) -> web.Response:
        """Hang up every call and clear every fault."""
        self.fake.faults.clear()
        ended = 0
        for answerer in (self.fake.answerer, self.fake.live):
            hang_up_all = getattr(answerer, "hang_up_all", None)
            ended += await hang_up_all() if hang_up_all else 0
        return web.json_response({"ended": ended})

    async def _drop(self, request: web.Request) -> web.Response:
        """``{"call_id": "rtc_…" (default: the newest call), "mode": "close" | "error" | "blackhole"}``."""
        drop = getattr(self.fake.answerer, "drop", None)
        if drop is None:
            return error(404, "not_supported", "This answerer has no media to drop.")
        body = await json_body(request)
        if not isinstance(body, dict) or body.get("mode", "close") not in ("close", "error", "blackhole"):
            return error(400, "invalid_value", "Expected {'call_id'?, 'mode': 'close' | 'error' | 'blackhole'}.")
        dropped = await drop(body.get("call_id"), body.get("mode", "close"))
        if dropped is None:
            return error(404, "call_id_not_found", "No session found for the provided call_id")
        return web.json_response({"call_id": dropped, "mode": body.get("mode", "close")})


def _open_calls(answerer: Answerer) -> int:
    """Calls ``answerer`` holds open (a canned one: those not hung up)."""
    calls = getattr(answerer, "calls", ())
    if isinstance(calls, dict):
        return sum(1 for call in calls.values() if not getattr(call, "closed", False))
    return len(calls)
