"""What a call costs, as far as it is known. Per-minute engines (GPT-Live) are priced by the seconds
OpenAI bills; per-token prices come with the call record (issue 13), so their cost is unknown here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# USD per minute of session time, the active rate (openai-live.md §5.1, OpenAI's model pages as of
# 2026-11-20). gpt-live-1.1's $0.02 standby minutes are not told apart in usage (§5.4), so a cost
# here is an upper bound for a session that stood by.
PER_MINUTE = {"gpt-live-1": 0.05, "gpt-live-1.1": 0.05}
# Creating a WebRTC session bills 15 s up front, credited against its duration (§5.3).
START_CHARGE_S = 15.0
MAX_SECONDS = 1e7  # more than any session lasts: a count beyond it is nonsense, not a bill


def billed_seconds(value: Any) -> float | None:
    """A count of billed seconds as OpenAI or a page gives it, if it is one: a number (not a
    boolean) in [0, ``MAX_SECONDS``); NaN and infinities are not."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < MAX_SECONDS:
        return float(value)
    return None


@dataclass(frozen=True)
class Minutes:
    """The billed time of a per-minute call, and what it costs at the model's rate (None: unknown)."""

    seconds: float
    cost: float | None
    estimated: bool = False  # not OpenAI's own count

    def __str__(self) -> str:
        price = f" ≈ ${self.cost:.3f}" if self.cost is not None else ""
        estimate = ", estimated" if self.estimated else ""
        return f"{self.seconds:.0f} s billed ({self.seconds / 60:.1f} min{price}{estimate})"


def per_minute(model: str, billed_seconds: float | None, *, estimated: bool = False) -> Minutes:
    """The billed minutes of a per-minute call of ``model`` that OpenAI counted ``billed_seconds``
    for (None: no count yet, then the start charge); its cost unknown for a model not in the table
    (an Azure deployment's name, say), never guessed."""
    rate = PER_MINUTE.get(model)
    seconds = max(START_CHARGE_S, billed_seconds or 0.0)
    return Minutes(seconds, None if rate is None else seconds / 60 * rate, estimated)
