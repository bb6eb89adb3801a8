"""Faults the fake REST API injects on request (tests, benchmarks): what one is, and how it strikes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from voicekiosk.fake.checks import error

FaultKind = Literal["status", "timeout", "malformed", "close"]
ENDPOINTS = ("client_secrets", "calls", "hangup")


@dataclass
class Fault:
    endpoint: str  # one of ENDPOINTS, or "*"
    kind: FaultKind = "status"
    status: int = 500
    code: str = "server_error"
    retry_after: int | None = None
    times: int | None = None  # None: until cleared


async def injected(faults: list[Fault], endpoint: str, request: web.Request, api_key: str) -> web.Response | None:
    """Apply the first of ``faults`` that matches ``endpoint``: the response it makes, or None if none matched.

    A fault with ``times`` left is used up; "timeout" never answers and "close" drops the connection.
    """
    for fault in faults:
        if fault.endpoint not in (endpoint, "*"):
            continue
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
        if fault.kind == "timeout":
            await asyncio.sleep(3600)
        if fault.kind == "close":
            if request.transport:
                request.transport.close()
            raise ConnectionResetError("fault: connection closed")
        if fault.kind == "malformed":
            ctype = "application/sdp" if endpoint == "calls" else "application/json"
            return web.Response(status=201 if endpoint == "calls" else 200, text="<html>oops", content_type=ctype)
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        # Real OpenAI messages can echo a masked key; the broker must never forward them.
        message = f"Injected fault. Incorrect API key provided: {api_key[:3]}****{api_key[-4:]}."
        return error(fault.status, fault.code, message, headers=headers)
    return None
