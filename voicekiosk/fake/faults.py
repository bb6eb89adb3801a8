"""Faults the fake REST API injects on request (tests, benchmarks): what one is, and how it strikes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

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
    """The first fault for ``endpoint`` of the kind asked for, with one of its ``times`` used up."""
    for fault in faults:
        if fault.endpoint not in (endpoint, "*") or (fault.kind in SPOILERS) != spoiler:
            continue
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
        return fault
    return None
