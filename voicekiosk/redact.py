"""Keep secrets out of every log line: API keys, ephemeral keys, access tokens, bearer headers."""

from __future__ import annotations

import re

_PATTERNS = (
    (re.compile(r"\bsk-[A-Za-z0-9_*.-]{6,}"), lambda m: "sk-…"),
    (re.compile(r"\bek_[A-Za-z0-9_-]{4,}"), lambda m: f"ek_…{m.group(0)[-4:]}"),
    (re.compile(r"(?i)\bbearer\s+\S+"), lambda m: "Bearer …"),
    (re.compile(r"(?i)([?&]token=)[^&\s\"']+"), lambda m: m.group(1) + "…"),
)
_secrets: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Redact this exact string wherever it appears (the API key, the access token)."""
    if secret and len(secret) >= 8:
        _secrets.add(secret)


def redact(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "…")
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text
