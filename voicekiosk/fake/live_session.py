"""What a fake GPT-Live session is made of besides its peer: what it asks of its owner, the session
resource it shows (``openai-live.md`` §2.2), and the speech it is saying."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from voicekiosk.fake.live_rules import LiveRules
from voicekiosk.fake.voice import Samples, Script


class LiveOwner(Protocol):
    """What a session asks of the ``LiveAnswerer`` that owns it."""

    vad_threshold: float
    silence_ms: int
    script: Script
    rules: LiveRules
    usage_every: float
    start_delay: float
    barge_in_ms: int

    def reply(self, turn: int) -> tuple[str, Samples]: ...

    def reap(self, call: Any) -> None: ...


@dataclass
class Speech:
    """What the voice is saying now."""

    greeting: bool
    done: asyncio.Event = field(default_factory=asyncio.Event)


def resource(session_id: str, session: dict[str, Any], expires_in: float) -> dict[str, Any]:
    """The session as ``session.started`` shows it, defaults filled in (§2.2)."""
    voice = session.get("audio", {}).get("output", {}).get("voice", "marin")
    defaults = {"instructions": "", "client": {}, "input": [], "store": False}
    return (
        defaults
        | session
        | {
            "id": session_id,
            "expires_at": int(time.time() + expires_in),
            "status": "active",
            "audio": {"output": {"voice": voice}},
            "delegation": session.get("delegation") or {"type": "client"},
        }
    )
