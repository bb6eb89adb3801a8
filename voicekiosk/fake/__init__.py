"""A fake OpenAI Realtime side: REST endpoints (``server``) and, with aiortc, a talking peer."""

from __future__ import annotations

from voicekiosk.fake.server import CannedAnswerer, FakeOpenAI, Fault

__all__ = ["CannedAnswerer", "FakeOpenAI", "Fault"]
