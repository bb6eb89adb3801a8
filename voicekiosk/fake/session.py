"""The GA session object: how OpenAI echoes one back, how ``session.created`` shows it, and how
``session.update`` changes it. Shared by the REST API and the talking peer."""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

TURN_DEFAULTS: dict[str, Any] = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300}
TURN_DEFAULTS |= {"idle_timeout_ms": None, "create_response": True, "interrupt_response": True}


def default_session() -> dict[str, Any]:
    """The session OpenAI assumes when a request gives none."""
    return {"type": "realtime", "model": "gpt-realtime"}


def described(session: dict[str, Any]) -> dict[str, Any]:
    """The session object as OpenAI echoes it back."""
    audio = session.get("audio", {})
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_" + secrets.token_hex(8),
        "model": session.get("model", "gpt-realtime"),
        "output_modalities": ["audio"],
        "instructions": session.get("instructions", ""),
        "tools": session.get("tools", []),
        "tool_choice": session.get("tool_choice", "auto"),
        "max_output_tokens": "inf",
        "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 24000}, **audio.get("input", {})},
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "alloy",
                **audio.get("output", {}),
            },
        },
    }


def session_object(session: dict[str, Any], silence_ms: int) -> dict[str, Any]:
    """The session as ``session.created`` shows it: GA shape, server defaults filled in."""
    obj = described(copy.deepcopy(session))
    obj.update(expires_at=int(time.time()) + 3600, tracing=None, prompt=None, include=None)
    audio_in = obj["audio"]["input"]
    audio_in.setdefault("transcription", None)
    audio_in.setdefault("noise_reduction", None)
    audio_in.setdefault("turn_detection", {**TURN_DEFAULTS, "silence_duration_ms": silence_ms})
    obj["audio"]["output"].setdefault("speed", 1)
    return obj


def merge(base: dict[str, Any], update: dict[str, Any]) -> None:
    """Update nested dicts in place, as ``session.update`` does."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
