"""A fake OpenAI voice side: the REST API (``FakeOpenAI``: Realtime, and GPT-Live in ``live_api``) and,
with aiortc, talking peers (``agent`` for Realtime, ``live_agent`` for Live)."""

from __future__ import annotations

from voicekiosk.fake.server import FakeOpenAI

__all__ = ["FakeOpenAI"]
