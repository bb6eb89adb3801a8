"""What the fake agent says on the ``oai-events`` data channel, as pure helpers: ids and the payloads
of GA Realtime server events (user items, responses, usage)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from voicekiosk.fake.voice import Samples

__all__ = [
    "Response",
    "new_id",
    "transcription_usage",
    "usage",
    "user_item",
]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def user_item(item_id: str) -> dict[str, Any]:
    """A committed user turn as ``conversation.item.added`` shows it: audio, no transcript yet."""
    item: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": "message", "role": "user"}
    return item | {"status": "completed", "content": [{"type": "input_audio", "transcript": None}]}


def transcription_usage(heard_s: float, transcript: str) -> dict[str, Any]:
    """The ``usage`` of a user turn's transcription: ~10 audio tokens per second heard, one per word."""
    tokens = {"input_tokens": max(1, round(heard_s * 10)), "output_tokens": len(transcript.split())}
    spent: dict[str, Any] = {"type": "tokens", "total_tokens": sum(tokens.values()), **tokens}
    spent["input_token_details"] = {"text_tokens": 0, "audio_tokens": tokens["input_tokens"]}
    return spent


def usage(heard_s: float, words: int, spoken_s: float, turn: int) -> dict[str, Any]:
    """GA ``usage`` with plausible counts: ~10 tokens per second heard, ~20 per second spoken."""
    text_in, audio_in = 120 + 40 * turn, max(1, round(heard_s * 10))
    text_out, audio_out = max(1, round(words * 1.3)), max(1, round(spoken_s * 20))
    cached = min(64 * turn, text_in)
    details_in: dict[str, Any] = {
        "text_tokens": text_in,
        "audio_tokens": audio_in,
        "image_tokens": 0,
        "cached_tokens": cached,
    }
    details_in["cached_tokens_details"] = {"text_tokens": cached, "audio_tokens": 0, "image_tokens": 0}
    return {
        "total_tokens": text_in + audio_in + text_out + audio_out,
        "input_tokens": text_in + audio_in,
        "output_tokens": text_out + audio_out,
        "input_token_details": details_in,
        "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
    }


@dataclass
class Response:
    """One assistant response of a call: its ids, what it says, and how far it got."""

    id: str
    item_id: str
    text: str
    clip: Samples
    heard_s: float
    turn: int
    spoken: list[str] = field(default_factory=list)  # transcript deltas sent so far
    task: asyncio.Task[None] | None = None

    def where(self) -> dict[str, Any]:
        return {"response_id": self.id, "item_id": self.item_id, "output_index": 0, "content_index": 0}

    def item(self, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        item = {"id": self.item_id, "object": "realtime.item", "type": "message", "status": status}
        return {**item, "role": "assistant", "content": content}

    def payload(self, status: str, *, voice: Any, conversation: str, **extra: Any) -> dict[str, Any]:
        """The ``realtime.response`` object of ``response.created`` and ``response.done``."""
        audio = {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": voice}}
        obj: dict[str, Any] = {"object": "realtime.response", "id": self.id, "status": status, "output": []}
        obj |= {"conversation_id": conversation, "output_modalities": ["audio"], "max_output_tokens": "inf"}
        return obj | {"status_details": None, "audio": audio, "usage": None, "metadata": None, **extra}

    def closing(
        self, played_s: float, cancelled: str | None, *, voice: Any, conversation: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """The events (type, fields) that end this response, completed or (with a reason) cancelled."""
        transcript = "".join(self.spoken).strip() if cancelled else self.text
        part = {"type": "output_audio", "transcript": transcript}
        item = self.item("incomplete" if cancelled else "completed", [part])
        details = {"type": "cancelled", "reason": cancelled} if cancelled else None
        spent = usage(self.heard_s, len(transcript.split()), played_s, self.turn)
        status = "cancelled" if cancelled else "completed"
        extra = {"status_details": details, "output": [item], "usage": spent}
        done = self.payload(status, voice=voice, conversation=conversation, **extra)
        return [
            ("response.output_audio_transcript.done", {**self.where(), "transcript": transcript}),
            ("response.content_part.done", {**self.where(), "part": part}),
            ("response.output_item.done", {"response_id": self.id, "output_index": 0, "item": item}),
            ("response.done", {"response": done}),
        ]
