"""Faults the fake REST API injects on request (tests, benchmarks): what one is, and how it strikes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from aiohttp import web

from voicekiosk.fake.checks import error

FaultKind = Literal["status", "timeout", "malformed", "close", "garbled", "oversized"]
ENDPOINTS = ("client_secrets", "calls", "hangup", "live_sessions", "live_hangup", "live_attach", "sideband")
# These strike after the request succeeded (the key is minted, the call made): only its answer is spoiled.
SPOILERS = ("garbled", "oversized")


@dataclass
class Fault:
    endpoint: str  # one of ENDPOINTS, or "*"
    kind: FaultKind = "status"
    status: int = 500
    code: str = "server_error"
    retry_after: int | None = None
    times: int | None = None  # None: until cleared
    size: int = 2 * 1024 * 1024  # "oversized": the answer's length in bytes, sent chunked
    seconds: float | None = None  # None: until cleared; else it lapses this long after it was made
    made: float = field(init=False, default_factory=time.monotonic, repr=False, compare=False)

    @property
    def lapsed(self) -> bool:
        return self.seconds is not None and time.monotonic() - self.made >= self.seconds


# What ``POST /_fake/faults`` may say of a fault, and the JSON types each takes.
_NUMBER = (int, float)
_FIELDS: dict[str, tuple[type, ...]] = {
    "endpoint": (str,),
    "kind": (str,),
    "status": (int,),
    "code": (str,),
    "retry_after": (int,),
    "times": (int,),
    "size": (int,),
    "seconds": _NUMBER,
}
assert set(_FIELDS) == {f.name for f in fields(Fault) if f.init}


def fault_from_json(value: Any) -> Fault:
    """A fault as ``POST /_fake/faults`` describes it, checked strictly.

    Raises:
      ValueError: what is wrong with it (an unknown field, a wrong type, an unknown endpoint or kind).
    """
    if not isinstance(value, dict):
        raise ValueError("Each fault must be a JSON object.")
    if unknown := sorted(set(value) - set(_FIELDS)):
        raise ValueError(f"Unknown fault field(s): {', '.join(unknown)}.")
    for name, given in value.items():
        if given is None and name in ("retry_after", "times", "seconds"):
            continue  # these may be null: no Retry-After, until cleared
        if isinstance(given, bool) or not isinstance(given, _FIELDS[name]):
            raise ValueError(f"Invalid type for '{name}'.")
    if value.get("endpoint", "*") not in (*ENDPOINTS, "*"):
        raise ValueError(f"Unknown endpoint; expected one of: {', '.join(ENDPOINTS)} or '*'.")
    if value.get("kind", "status") not in get_args(FaultKind):
        raise ValueError(f"Unknown kind; expected one of: {', '.join(get_args(FaultKind))}.")
    for name in ("times", "seconds", "size"):
        if value.get(name) is not None and value[name] <= 0:
            raise ValueError(f"'{name}' must be positive.")
    return Fault(**value)


async def injected(faults: list[Fault], endpoint: str, request: web.Request, api_key: str) -> web.Response | None:
    """Apply the first of ``faults`` that matches ``endpoint``: the response it makes, or None if none matched.

    A fault with ``times`` left is used up; "timeout" never answers and "close" drops the connection.
    """
    fault = _take(faults, endpoint, spoiler=False)
    if fault is None:
        return None
    if fault.kind == "timeout":
        await asyncio.sleep(3600)
    if fault.kind == "close":
        if request.transport:
            request.transport.close()
        raise ConnectionResetError("fault: connection closed")
    if fault.kind == "malformed":
        ctype = "application/sdp" if endpoint == "calls" else "application/json"
        status = 201 if endpoint in ("calls", "live_sessions") else 200
        return web.Response(status=status, text="<html>oops", content_type=ctype)
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    # Real OpenAI messages can echo a masked key; the broker must never forward them.
    message = f"Injected fault. Incorrect API key provided: {api_key[:3]}****{api_key[-4:]}."
    return error(fault.status, fault.code, message, headers=headers)


def spoiled(faults: list[Fault], endpoint: str, answer: web.Response) -> web.Response:
    """``answer`` (of a request that succeeded), spoiled by the first "garbled" or "oversized" fault
    matching ``endpoint``: HTML instead, or padded to ``size`` bytes; status and headers kept."""
    fault = _take(faults, endpoint, spoiler=True)
    if fault is None:
        return answer
    body = answer.body if isinstance(answer.body, bytes) else b""
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "content-type")}
    if fault.kind == "garbled":
        return web.Response(status=answer.status, body=b"<html>oops", content_type="text/html", headers=headers)
    padded = web.Response(
        status=answer.status, body=body.ljust(fault.size, b" "), content_type=answer.content_type, headers=headers
    )
    padded.enable_chunked_encoding()  # no Content-Length: the reader finds out only by reading
    return padded


def _take(faults: list[Fault], endpoint: str, *, spoiler: bool) -> Fault | None:
    """The first fault for ``endpoint`` of the kind asked for, with one of its ``times`` used up
    (lapsed ones are dropped first)."""
    faults[:] = [fault for fault in faults if not fault.lapsed]
    for fault in faults:
        if fault.endpoint not in (endpoint, "*") or (fault.kind in SPOILERS) != spoiler:
            continue
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
        return fault
    return None
