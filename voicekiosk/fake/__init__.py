"""A fake OpenAI Realtime side: the REST API (``FakeOpenAI``) and, with aiortc, a talking peer (``agent``)."""

from __future__ import annotations

from voicekiosk.fake.server import FakeOpenAI

__all__ = ["FakeOpenAI"]
