"""``[[tools]]`` webhooks: the server posts the model's arguments as JSON to the configured URL,
with the configured (secret) headers, and gives the model the answer. The model never sees the
URL or the headers; a secret never reaches a log line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from voicekiosk.redact import register_secret
from voicekiosk.tools.base import ToolError
from voicekiosk.tools.spec import WebhookSpec

MAX_ANSWER = 64 * 1024


class WebhookTool:
    """One webhook as a ``Tool``; its secrets are read (and registered for redaction) when made.

    Raises:
      ConfigError: a secret's environment variable is not set.
    """

    def __init__(self, spec: WebhookSpec, client: httpx.AsyncClient, environ: Mapping[str, str] | None = None) -> None:
        self.spec = spec
        self.name, self.description, self.parameters = spec.name, spec.description, spec.parameters
        self.timeout = spec.timeout
        self.source = "webhook"
        self._client = client
        self._headers = {"Content-Type": "application/json", "Accept": "application/json, text/plain"}
        for header, secret in spec.headers:
            value = secret.value(environ)
            register_secret(value)
            self._headers[header] = value

    async def run(self, arguments: dict[str, Any]) -> str:
        try:
            async with self._client.stream(
                "POST", self.spec.url, content=json.dumps(arguments).encode(), headers=self._headers
            ) as response:
                body = await _read(response)
        except httpx.TimeoutException:
            raise ToolError(f"{self.name} did not answer in time.") from None
        except httpx.HTTPError:
            raise ToolError(f"{self.name} could not be reached.") from None
        if not 200 <= response.status_code < 300:
            raise ToolError(f"{self.name} answered with an error (HTTP {response.status_code}).")
        return _as_text(body)


async def _read(response: httpx.Response) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER:
            raise ToolError("The answer was too long.")
    return bytes(body)


def _as_text(body: bytes) -> str:
    """JSON compacted (the model reads it well), anything else as text."""
    text = body.decode("utf-8", errors="replace")
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError):
        return text.strip() or "(done)"
