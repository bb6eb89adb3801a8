"""The only code that talks to OpenAI: mint ephemeral keys, exchange SDP, hang up calls.

It owns one pooled ``httpx.AsyncClient`` per app. Upstream failures become ``UpstreamError``s
with a stable code and a message of ours: the upstream's own text can quote (a masked form of)
the key, so it is logged redacted and never forwarded to a browser.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import ssl
import time
from dataclasses import dataclass
from typing import Any

import certifi
import httpx

from voicekiosk.errors import UpstreamError
from voicekiosk.redact import redact
from voicekiosk.settings import Settings

log = logging.getLogger("voicekiosk.broker")

JSON_BODY = {"Content-Type": "application/json"}
CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # always used with fullmatch
# Bounded pool: a handful of kiosks need one or two connections, a burst waits for a free one.
POOL = httpx.Limits(max_connections=16, max_keepalive_connections=16, keepalive_expiry=60)


@dataclass(frozen=True)
class ClientSecret:
    value: str
    expires_at: int
    model: str
    upstream_ms: float


@dataclass(frozen=True)
class Call:
    call_id: str | None
    answer_sdp: str
    upstream_ms: float


def session_config(settings: Settings) -> dict[str, Any]:
    """The GA session object sent with every mint and every call."""
    turn: dict[str, Any] = {
        "type": settings.turn_detection,
        "create_response": True,
        "interrupt_response": True,
    }
    if settings.turn_detection == "semantic_vad":
        turn["eagerness"] = "auto"
    noise = None if settings.noise_reduction == "off" else {"type": settings.noise_reduction}
    return {
        "type": "realtime",
        "model": settings.model,
        "instructions": settings.instructions,
        "audio": {
            "input": {
                "transcription": {"model": settings.transcription_model},
                "turn_detection": turn,
                "noise_reduction": noise,
            },
            "output": {"voice": settings.voice},
        },
    }


def upstream_ssl_context(settings: Settings) -> ssl.SSLContext:
    """Trust ``ca_bundle`` if given, else ``SSL_CERT_FILE``, else certifi's roots."""
    cafile = settings.ca_bundle or os.environ.get("SSL_CERT_FILE") or certifi.where()
    return ssl.create_default_context(cafile=str(cafile))


class RealtimeBroker:
    """Calls the OpenAI Realtime REST endpoints with the real key, which never leaves here."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        timeout = settings.upstream_timeout
        self._client = httpx.AsyncClient(
            base_url=settings.openai_base_url + "/",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0), pool=timeout),
            limits=POOL,
            verify=upstream_ssl_context(settings),
            transport=transport,
            trust_env=False,
            headers={"User-Agent": "voicekiosk"},
        )
        self._session = session_config(settings)
        # Encoded once: every mint and call sends the same session.
        self._mint_body = json.dumps(
            {"expires_after": {"anchor": "created_at", "seconds": settings.token_ttl}, "session": self._session}
        ).encode()
        self._boundary = "voicekiosk-" + secrets.token_hex(12)
        self._session_part = (
            f'--{self._boundary}\r\nContent-Disposition: form-data; name="session"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(self._session)}\r\n--{self._boundary}--\r\n"
        ).encode()

    @property
    def has_key(self) -> bool:
        return bool(self.settings.api_key)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def create_client_secret(self) -> ClientSecret:
        """Mint an ephemeral key (GA ``POST /realtime/client_secrets``)."""
        response, ms = await self._send(
            "POST", "realtime/client_secrets", "mint", content=self._mint_body, headers=JSON_BODY
        )
        data = _json_object(response)
        value, expires_at = data.get("value"), data.get("expires_at")
        if not isinstance(value, str) or not value or not isinstance(expires_at, int):
            raise _malformed("mint", "no key in the answer")
        session = data.get("session")
        model = session.get("model") if isinstance(session, dict) else None
        return ClientSecret(value, expires_at, model if isinstance(model, str) else self.settings.model, ms)

    async def create_call(self, offer_sdp: str) -> Call:
        """Exchange the browser's SDP offer for OpenAI's answer (GA unified interface)."""
        offer = offer_sdp.encode()
        if self._boundary.encode() in offer:
            raise UpstreamError(400, "bad_sdp", "The SDP offer cannot be sent as it is.")
        body = (
            (
                f'--{self._boundary}\r\nContent-Disposition: form-data; name="sdp"\r\n'
                "Content-Type: application/sdp\r\n\r\n"
            ).encode()
            + offer
            + b"\r\n"
            + self._session_part
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={self._boundary}", "Accept": "application/sdp"}
        response, ms = await self._send("POST", "realtime/calls", "call", content=body, headers=headers)
        answer = response.text
        if not answer.startswith("v=0"):
            raise _malformed("call", "the answer is not SDP")
        location = response.headers.get("location", "")
        call_id = location.rstrip("/").rsplit("/", 1)[-1] or None
        if call_id is not None and not CALL_ID.fullmatch(call_id):
            call_id = None
        if call_id is None:
            log.warning("OpenAI answered the call without a usable Location; it cannot be hung up")
        return Call(call_id, answer, ms)

    async def hang_up(self, call_id: str) -> float:
        """End a call (``POST /realtime/calls/{id}/hangup``). A call already gone is fine."""
        if not CALL_ID.fullmatch(call_id):
            raise ValueError("bad call id")
        try:
            _, ms = await self._send("POST", f"realtime/calls/{call_id}/hangup", "hang-up")
        except UpstreamError as exc:
            if exc.upstream_status == 404:
                return 0.0
            raise
        return ms

    async def _send(self, method: str, path: str, what: str, **kwargs: Any) -> tuple[httpx.Response, float]:
        if not self.settings.api_key:
            raise UpstreamError(
                503, "no_api_key", "The server has no OpenAI API key. Set OPENAI_API_KEY and restart it."
            )
        headers = {"Authorization": f"Bearer {self.settings.api_key}", **kwargs.pop("headers", {})}
        started = time.perf_counter()
        try:
            response = await self._client.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException:
            raise UpstreamError(
                504, "upstream_timeout", f"OpenAI did not answer the {what} in time. Try again shortly."
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.warning("OpenAI %s failed: %s", what, redact(f"{type(exc).__name__}: {exc}"))
            message = "Cannot reach OpenAI. Check this server's network connection."
            if _caused_by(exc, ssl.SSLCertVerificationError):
                message = "Cannot verify OpenAI's certificate. Check ca_bundle or SSL_CERT_FILE on the server."
            raise UpstreamError(503, "upstream_unreachable", message) from None
        ms = (time.perf_counter() - started) * 1000
        if response.is_success:
            return response, ms
        raise _status_error(response, what)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # a bounded walk down the cause chain
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _status_error(response: httpx.Response, what: str) -> UpstreamError:
    status = response.status_code
    upstream_code = _upstream_code(response)
    log.warning(
        "OpenAI refused the %s: HTTP %s %s %s",
        what,
        status,
        upstream_code or "",
        redact(response.text[:300]),
    )
    kw: dict[str, Any] = {"upstream_status": status, "upstream_code": upstream_code}
    if status in (401, 403):
        return UpstreamError(502, "upstream_auth", "OpenAI rejected this server's API key. Check OPENAI_API_KEY.", **kw)
    if status == 429:
        retry = response.headers.get("retry-after")
        headers = {"Retry-After": retry} if retry and retry.strip().isdigit() else {}
        if upstream_code == "insufficient_quota":
            message = "The OpenAI account is out of credit. Check its billing."
        else:
            message = "OpenAI is rate limiting this server. Try again in a moment."
        return UpstreamError(429, "upstream_rate_limited", message, headers=headers, **kw)
    if status >= 500:
        return UpstreamError(502, "upstream_error", "OpenAI had an error. Try again shortly.", **kw)
    return UpstreamError(
        502,
        "upstream_rejected",
        f"OpenAI refused the {what} (HTTP {status}{', ' + upstream_code if upstream_code else ''}). "
        "Check the model and session settings.",
        **kw,
    )


def _upstream_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and re.fullmatch(r"[a-z0-9_.-]{1,64}", code) else None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise _malformed("mint", "the answer is not JSON") from None
    if not isinstance(data, dict):
        raise _malformed("mint", "the answer is not a JSON object")
    return data


def _malformed(what: str, detail: str) -> UpstreamError:
    log.warning("OpenAI's %s answer was malformed: %s", what, detail)
    return UpstreamError(502, "upstream_malformed", f"OpenAI sent an answer we cannot use ({detail}).")
