"""The HTTP client every engine talks to OpenAI with, and how its failures become ours.

One pooled ``httpx.AsyncClient`` per app carries the real key. Upstream failures become
``UpstreamError``s with a stable code and a message of ours: the upstream's own text can quote
(a masked form of) the key, so it is logged redacted and never forwarded to a browser.
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import certifi
import httpx
from yarl import URL

from voicekiosk.errors import UpstreamError
from voicekiosk.redact import redact
from voicekiosk.settings import Settings

log = logging.getLogger("voicekiosk.upstream")

JSON_BODY = {"Content-Type": "application/json"}
# Bounded pool: a handful of kiosks need one or two connections, a burst waits for a free one.
POOL = httpx.Limits(max_connections=16, max_keepalive_connections=16, keepalive_expiry=60)
MAX_ANSWER = 1024 * 1024  # bytes: a mint or an SDP answer is a few KB; never read more than this


@dataclass(frozen=True)
class Answer:
    """OpenAI's answer, read up to ``MAX_ANSWER`` bytes of body."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    complete: bool  # False: the body was longer, and was cut at MAX_ANSWER

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON. Raises ValueError if it is not."""
        return json.loads(self.body)


def upstream_ssl_context(settings: Settings) -> ssl.SSLContext:
    """Trust ``ca_bundle`` if given, else ``SSL_CERT_FILE``, else certifi's roots."""
    cafile = settings.ca_bundle or os.environ.get("SSL_CERT_FILE") or certifi.where()
    return ssl.create_default_context(cafile=str(cafile))


def websocket_url(base_url: str, *path: str) -> URL:
    """A WebSocket URL below the configured REST base (``https`` → ``wss``, ``http`` → ``ws``)."""
    base = URL(base_url)
    return base.with_scheme("wss" if base.scheme == "https" else "ws").joinpath(*path)


def websocket_client(
    settings: Settings, *, limit: int, timeout: aiohttp.ClientTimeout | None = None
) -> aiohttp.ClientSession:
    """A client for OpenAI's WebSockets (sidebands; httpx has none), verified as the REST client is."""
    connector = aiohttp.TCPConnector(ssl=upstream_ssl_context(settings), limit=limit)
    options: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}  # else aiohttp's default
    return aiohttp.ClientSession(connector=connector, trust_env=False, headers={"User-Agent": "voicekiosk"}, **options)


class UpstreamObserver(Protocol):
    """What keeps account of the requests sent upstream (the metrics). Must not raise or block."""

    def upstream_answered(self, path: str, what: str, seconds: float, error: UpstreamError | None) -> None:
        """``path`` (below the base URL) took ``seconds``; ``error``: how it failed, if it did."""
        ...


class UpstreamClient:
    """Sends requests to ``settings.openai_base_url`` with the real key, which never leaves here."""

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
            # Uncompressed: the size cap is on what is read, and a small gzip can unpack huge.
            headers={"User-Agent": "voicekiosk", "Accept-Encoding": "identity"},
        )
        self._observers: list[UpstreamObserver] = []

    async def aclose(self) -> None:
        await self._client.aclose()

    def auth_headers(self) -> dict[str, str]:
        """The real key as a header, for this client's requests and an engine's WebSockets.

        Raises:
          UpstreamError: 503 ``no_api_key``.
        """
        if not self.settings.api_key:
            raise UpstreamError(
                503, "no_api_key", "The server has no OpenAI API key. Set OPENAI_API_KEY and restart it."
            )
        return {"Authorization": f"Bearer {self.settings.api_key}"}

    def observe(self, observer: UpstreamObserver) -> None:
        """Tell ``observer`` of every request sent from now on (the metrics)."""
        self._observers.append(observer)

    async def send(self, method: str, path: str, what: str, **kwargs: Any) -> tuple[Answer, float]:
        """``method path`` upstream; the answer (its body capped, see ``Answer.complete``) and the
        milliseconds it took.

        Raises:
          UpstreamError: no key, no answer in time, unreachable, or a refusal (``what`` names
            the request in messages: "mint", "call", ...).
        """
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}  # no key: nothing is sent
        started = time.perf_counter()
        try:
            answer, ms = await self._exchange(method, path, what, started, headers=headers, **kwargs)
        except UpstreamError as exc:
            self._tell(path, what, started, exc)
            raise
        self._tell(path, what, started, None)
        return answer, ms

    def _tell(self, path: str, what: str, started: float, error: UpstreamError | None) -> None:
        for observer in self._observers:
            observer.upstream_answered(path, what, time.perf_counter() - started, error)

    async def _exchange(self, method: str, path: str, what: str, started: float, **kwargs: Any) -> tuple[Answer, float]:
        request = self._client.build_request(method, path, **kwargs)
        try:
            response = await self._client.send(request, stream=True)
            try:
                answer = await _read_capped(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException:
            raise UpstreamError(
                504, "upstream_timeout", f"OpenAI did not answer the {what} in time. Try again shortly."
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise unreachable(what, exc) from None
        ms = (time.perf_counter() - started) * 1000
        if 200 <= answer.status_code < 300:
            return answer, ms
        raise status_error(answer, what)


def unreachable(what: str, exc: BaseException) -> UpstreamError:
    """OpenAI could not be reached for ``what`` (logged redacted); the error for the page."""
    log.warning("OpenAI %s failed: %s", what, redact(f"{type(exc).__name__}: {exc}"))
    message = "Cannot reach OpenAI. Check this server's network connection."
    if _caused_by(exc, ssl.SSLCertVerificationError):
        message = "Cannot verify OpenAI's certificate. Check ca_bundle or SSL_CERT_FILE on the server."
    return UpstreamError(503, "upstream_unreachable", message)


async def _read_capped(response: httpx.Response) -> Answer:
    """Read at most ``MAX_ANSWER`` bytes of the body (none if its Content-Length says more)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER:
        return Answer(response.status_code, response.headers, b"", complete=False)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER:
            return Answer(response.status_code, response.headers, bytes(body[:MAX_ANSWER]), complete=False)
    return Answer(response.status_code, response.headers, bytes(body), complete=True)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # a bounded walk down the cause chain
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


HANG_UPS = ("hang-up", "live hang-up")  # what ``send`` calls the hang-up requests (the metrics' endpoints)


def status_error(response: Answer, what: str) -> UpstreamError:
    status = response.status_code
    upstream_code = _upstream_code(response)
    # A hang-up of a call that has ended already (OpenAI dropped it, or its page hung up first) is
    # the normal end of a drop, not a problem: it would fill the log and /admin's problems.
    gone = status == 404 and what in HANG_UPS
    log.log(
        logging.INFO if gone else logging.WARNING,
        "OpenAI refused the %s: HTTP %s %s %s",
        what,
        status,
        upstream_code or "",
        redact(response.text[:300]),
    )
    kw: dict[str, Any] = {"upstream_status": status, "upstream_code": upstream_code}
    if status == 401:
        return UpstreamError(502, "upstream_auth", "OpenAI rejected this server's API key. Check OPENAI_API_KEY.", **kw)
    if status == 403:  # a valid key without access: to the model, the voice (GPT-Live), the API
        message = (
            "OpenAI refused this server's key access to that (HTTP 403"
            f"{', ' + upstream_code if upstream_code else ''}). Check the project's access to the model and the voice."
        )
        return UpstreamError(502, "upstream_forbidden", message, **kw)
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


def _upstream_code(response: Answer) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError, RecursionError):
        return None
    return safe_code(error.get("code") if isinstance(error, dict) else None)


def safe_code(code: Any) -> str | None:
    """An error code OpenAI sent, if it looks like one (so it may be logged and answered as is)."""
    return code if isinstance(code, str) and re.fullmatch(r"[a-z0-9_.-]{1,64}", code) else None


def json_object(response: Answer, what: str) -> dict[str, Any]:
    if not response.complete:
        raise too_large(what)
    try:
        data = response.json()
    except (ValueError, RecursionError):
        raise malformed(what, "the answer is not JSON") from None
    if not isinstance(data, dict):
        raise malformed(what, "the answer is not a JSON object")
    return data


def too_large(what: str) -> UpstreamError:
    return malformed(what, f"the answer is larger than {MAX_ANSWER // 1024} KB")


def malformed(what: str, detail: str) -> UpstreamError:
    log.warning("OpenAI's %s answer was malformed: %s", what, detail)
    return UpstreamError(502, "upstream_malformed", f"OpenAI sent an answer we cannot use ({detail}).")
