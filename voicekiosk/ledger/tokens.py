"""``Tokens``: what one call used, by kind, as OpenAI's ``usage`` objects say it (a Realtime
response's, with its details; a transcript's), and what that costs at a model's ``Price``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from voicekiosk.ledger.prices import TOKEN_KINDS, Price

MAX_COUNT = 10**9  # more tokens than one usage object can hold: nonsense, not a count


@dataclass
class Tokens:
    """Token counts by kind (``TOKEN_KINDS``; ``*_in``: uncached input); ``other_*``: counts that
    came without a split by kind, so that cannot be priced."""

    text_in: int = 0
    text_cached: int = 0
    text_out: int = 0
    audio_in: int = 0
    audio_cached: int = 0
    audio_out: int = 0
    image_in: int = 0
    image_cached: int = 0
    other_in: int = 0
    other_out: int = 0

    @property
    def input(self) -> int:
        cached = self.text_cached + self.audio_cached + self.image_cached
        return self.text_in + self.audio_in + self.image_in + cached + self.other_in

    @property
    def output(self) -> int:
        return self.text_out + self.audio_out + self.other_out

    @property
    def total(self) -> int:
        return self.input + self.output

    def counts(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def add(self, usage: Mapping[str, Any]) -> Tokens:
        """Count a ``usage`` object: a Realtime response's (``openai-realtime.md``: details by kind,
        cached input a part of each kind's input) or a transcript's (input by kind, output text).
        Returns what it added. Nothing but non-negative ints is trusted."""
        added = Tokens()
        details = _dict(usage.get("input_token_details"))
        cached = _dict(details.get("cached_tokens_details"))
        if details:
            for kind in ("text", "audio", "image"):
                part = _count(details.get(f"{kind}_tokens"))
                hit = min(part, _count(cached.get(f"{kind}_tokens")))
                setattr(added, f"{kind}_in", part - hit)
                setattr(added, f"{kind}_cached", hit)
        else:
            added.other_in = _count(usage.get("input_tokens"))
        out = _dict(usage.get("output_token_details"))
        if out:
            added.text_out, added.audio_out = _count(out.get("text_tokens")), _count(out.get("audio_tokens"))
        elif usage.get("type") == "tokens" and details:  # a transcript's output is its text
            added.text_out = _count(usage.get("output_tokens"))
        else:
            added.other_out = _count(usage.get("output_tokens"))
        self.merge(added)
        return added

    def merge(self, other: Tokens) -> None:
        for name, value in other.counts().items():
            setattr(self, name, min(MAX_COUNT, getattr(self, name) + value))

    def subtract(self, other: Tokens) -> None:
        """Take back counts added before (a page's report replaced by OpenAI's count)."""
        for name, value in other.counts().items():
            setattr(self, name, max(0, getattr(self, name) - value))

    def cost(self, price: Price | None) -> float | None:
        """USD at ``price`` (per 1M tokens); None if any tokens are of a kind it has no price for."""
        if self.total == 0:
            return 0.0
        if price is None or self.other_in or self.other_out:
            return None
        usd = 0.0
        for kind in TOKEN_KINDS:
            count, rate = getattr(self, kind), getattr(price, kind)
            if count and rate is None:
                return None
            usd += count * (rate or 0.0) / 1e6
        return usd


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    """A token count: a non-negative int (not a boolean), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_COUNT else 0
