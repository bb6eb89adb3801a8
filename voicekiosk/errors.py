"""The exceptions voicekiosk raises; the CLI and the HTTP layer turn them into messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class VoicekioskError(Exception):
    """Something the user can fix; the message says how."""


class ConfigError(VoicekioskError):
    """A bad configuration value (the CLI exits 2)."""


class StartupError(VoicekioskError):
    """The server cannot start (port taken, unreadable certificate, ...)."""


class ApiError(VoicekioskError):
    """An error answered to the browser as ``{"error": {"code", "message", **details}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = dict(details or {})  # more for a program to read, e.g. when a closed kiosk opens

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class UpstreamError(ApiError):
    """OpenAI (or the network to it) failed; the message is ours, never the upstream's text."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        upstream_status: int | None = None,
        upstream_code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, headers=headers)
        self.upstream_status = upstream_status
        self.upstream_code = upstream_code
