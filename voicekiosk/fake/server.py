"""A fake OpenAI Realtime REST API (GA shapes) for tests, benchmarks and ``serve --demo``; GPT-Live's
``/v1/live/sessions`` too (``live_api``).

It mints ``ek_`` keys, answers SDP offers posted raw (ephemeral key) or as multipart (real key),
hangs calls up, and speaks OpenAI's error shape. Faults and latency can be injected from Python
or over HTTP (``POST /_fake/faults``). It checks what it receives as OpenAI would and records it,
so tests assert on the requests the broker really sent.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from voicekiosk.fake.answerers import Answerer, CannedAnswerer
from voicekiosk.fake.checks import beta_disabled, check_expires, error, form_fields, json_body, refused, session_refusal
from voicekiosk.fake.controls import ControlRoutes
from voicekiosk.fake.faults import Fault, FaultKind, injected, spoiled
from voicekiosk.fake.live_api import LiveRoutes
from voicekiosk.fake.live_rules import LiveRules
from voicekiosk.fake.session import default_session, described
from voicekiosk.fake.sideband import sideband


@dataclass
class Recorded:
    endpoint: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeOpenAI:
    """State and knobs of one fake. ``app()`` gives the aiohttp application that serves it."""

    api_key: str = "sk-test-" + "x" * 40
    answerer: Answerer = field(default_factory=CannedAnswerer)
    live: Answerer = field(default_factory=CannedAnswerer)  # GPT-Live sessions (``live_api``)
    # What the Live API decides where the doc is open; a ``LiveAnswerer``'s own rules win, so the
    # REST side and the talking side never disagree.
    live_rules: LiveRules = field(default_factory=LiveRules)
    latency: float = 0.0  # seconds added to every request, preflights included
    faults: list[Fault] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    peers: set[tuple[Any, ...]] = field(default_factory=set)  # distinct client (host, port)s
    keys: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    record_limit: int = 1000
    counts: Counter[str] = field(default_factory=Counter)  # requests per endpoint, never trimmed
    made: Counter[str] = field(default_factory=Counter)  # calls answered, by engine ("realtime", "live")

    def __post_init__(self) -> None:
        rules = getattr(self.live, "rules", None)
        if isinstance(rules, LiveRules):
            self.live_rules = rules

    @property
    def connections(self) -> int:
        return len(self.peers)

    def add_fault(self, endpoint: str = "*", kind: FaultKind = "status", **kw: Any) -> Fault:
        fault = Fault(endpoint, kind, **kw)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def recorded(self, endpoint: str) -> list[Recorded]:
        return [r for r in self.requests if r.endpoint == endpoint]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=256 * 1024)
        app.router.add_post("/v1/realtime/client_secrets", self._client_secrets)
        app.router.add_post("/v1/realtime/calls", self._calls)
        app.router.add_route("OPTIONS", "/v1/realtime/calls", self._preflight)
        app.router.add_post("/v1/realtime/calls/{call_id}/hangup", self._hangup)
        app.router.add_post("/v1/realtime/sessions", self._beta)
        app.router.add_post("/v1/realtime", self._beta)
        app.router.add_get("/v1/realtime", self._sideband)
        ControlRoutes(self).add_to(app)
        LiveRoutes(self).add_to(app)

        async def close_answerer(app: web.Application) -> None:
            await self.answerer.close()
            await self.live.close()

        app.on_cleanup.append(close_answerer)
        return app

    # -- plumbing ---------------------------------------------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.peers.add(tuple(peer))
        if self.latency:
            await asyncio.sleep(self.latency)
        response = await handler(request)
        if request.headers.get("Origin"):
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Expose-Headers"] = "Location"
        return response

    def _record(self, endpoint: str, request: web.Request, body: Any) -> None:
        self.counts[endpoint] += 1
        if len(self.requests) >= self.record_limit:
            del self.requests[: self.record_limit // 2]
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        self.requests.append(Recorded(endpoint, request.method, request.path, headers, body))

    async def _fault(self, endpoint: str, request: web.Request) -> web.Response | None:
        return await injected(self.faults, endpoint, request, self.api_key)

    async def admit(self, endpoint: str, request: web.Request, body: Any) -> web.Response | None:
        """Record a request for the real key's endpoints; the refusal (bad key, injected fault), if any."""
        self._record(endpoint, request, body)
        return self._auth(request) or await self._fault(endpoint, request)

    async def sideband_admit(self, request: web.Request, call_id: str) -> web.Response | None:
        """Record a sideband request; an injected fault, if any (the key is the route's to judge)."""
        self._record("sideband", request, call_id)
        return await self._fault("sideband", request)

    async def _sideband(self, request: web.Request) -> web.StreamResponse:
        return await sideband(self, request)

    def _auth(self, request: web.Request, *, ephemeral_ok: bool = False) -> web.Response | None:
        token = _token(request)
        if token == self.api_key:
            return None
        if ephemeral_ok and token in self.keys and self.keys[token][0] > time.time():
            return None
        return error(401, "invalid_api_key", "Incorrect API key provided.")

    # -- endpoints --------------------------------------------------------------------------

    async def _client_secrets(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        if denied := await self.admit("client_secrets", request, body):
            return denied
        if request.headers.get("OpenAI-Beta"):
            return beta_disabled()
        if not isinstance(body, dict):
            return error(400, "invalid_json", "We could not parse the JSON body of your request.")
        session = body.get("session", default_session())
        expires = body.get("expires_after", {"anchor": "created_at", "seconds": 600})
        if refusal := session_refusal(session):
            return refused(refusal)
        if problem := check_expires(expires):
            return error(400, "invalid_value", f"Invalid value for '{problem}'.", param=problem)
        value = "ek_" + secrets.token_hex(16)
        expires_at = int(time.time()) + int(expires["seconds"])
        self.keys[value] = (expires_at, session)
        answer = web.json_response({"value": value, "expires_at": expires_at, "session": described(session)})
        return spoiled(self.faults, "client_secrets", answer)

    async def _calls(self, request: web.Request) -> web.StreamResponse:
        if "model" in request.query:
            return beta_disabled()
        if request.content_type == "multipart/form-data":
            form = await form_fields(request)
            self._record("calls", request, form)
            if denied := self._auth(request):
                return denied
            if set(form) - {"sdp", "session"} or "sdp" not in form:
                return error(400, "invalid_request", "The form takes 'sdp' and optionally 'session'.")
            try:
                session = json.loads(form.get("session", "{}"))
            except ValueError:
                return error(400, "invalid_json", "'session' is not JSON.", param="session")
            offer = form["sdp"]
        elif request.content_type == "application/sdp":
            offer = await request.text()
            self._record("calls", request, offer)
            if denied := self._auth(request, ephemeral_ok=True):
                return denied
            token = _token(request)
            session = self.keys[token][1] if token in self.keys else default_session()
        else:
            self._record("calls", request, None)
            return error(400, "invalid_content_type", "Send application/sdp or multipart/form-data.")
        if fault := await self._fault("calls", request):
            return fault
        if refusal := session_refusal(session):
            return refused(refusal)
        if not offer.startswith("v=0"):
            return error(400, "invalid_offer", "The SDP offer could not be parsed.")
        call_id = "rtc_" + secrets.token_hex(12)
        sdp = await self.answerer.answer(call_id, offer, session)
        self.made["realtime"] += 1
        answer = web.Response(
            status=201, text=sdp, content_type="application/sdp", headers={"Location": f"/v1/realtime/calls/{call_id}"}
        )
        return spoiled(self.faults, "calls", answer)

    async def _preflight(self, request: web.Request) -> web.Response:
        self._record("preflight", request, None)
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "0",
            },
        )

    async def _hangup(self, request: web.Request) -> web.StreamResponse:
        call_id = request.match_info["call_id"]
        if denied := await self.admit("hangup", request, call_id):
            return denied
        if not await self.answerer.hang_up(call_id):
            return error(404, "call_id_not_found", "No session found for the provided call_id")
        return web.Response(status=200)

    async def _beta(self, request: web.Request) -> web.Response:
        self._record("beta", request, None)
        return beta_disabled()


def _token(request: web.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
