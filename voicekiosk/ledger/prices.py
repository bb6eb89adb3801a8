"""What a call costs, as far as it is known: OpenAI's prices per model, each dated with its source,
overridable in the config file (``[prices."model"]``). Token engines (Realtime) are priced per 1M
tokens by kind; per-minute engines (GPT-Live) by the seconds OpenAI bills. A model not in the
table costs None ("unknown"), never a guess."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicekiosk.errors import ConfigError

# Creating a WebRTC session bills 15 s up front, credited against its duration (openai-live.md §5.3).
START_CHARGE_S = 15.0
MAX_SECONDS = 1e7  # more than any session lasts: a count beyond it is nonsense, not a bill
# The kinds of tokens a price names (USD per 1M): input (uncached), cached input, output.
TOKEN_KINDS = (
    "text_in", "text_cached", "text_out", "audio_in", "audio_cached", "audio_out", "image_in", "image_cached",
)  # fmt: skip
PRICE_KEYS = (*TOKEN_KINDS, "per_minute")


@dataclass(frozen=True)
class Price:
    """One model's prices: USD per 1M tokens of each kind (None: it takes no such tokens, or the
    price is not known), or USD per minute of session time; when read, and where."""

    text_in: float | None = None
    text_cached: float | None = None
    text_out: float | None = None
    audio_in: float | None = None
    audio_cached: float | None = None
    audio_out: float | None = None
    image_in: float | None = None
    image_cached: float | None = None
    per_minute: float | None = None
    dated: str = ""
    source: str = ""


def _model_page(model: str) -> str:
    return f"https://developers.openai.com/api/docs/models/{model}"


def _realtime(model: str, text: tuple[float, ...], audio: tuple[float, ...], image: tuple[float, ...] = ()) -> Price:
    """A Realtime model's prices, each kind as (input, cached input, output), from its model page."""
    prices = dict(zip(TOKEN_KINDS, (*text, *audio, *image), strict=False))
    return Price(**prices, dated="2026-12-01", source=_model_page(model))


_TEXT_2, _AUDIO_2, _IMAGE_2 = (4.00, 0.40, 24.00), (32.00, 0.40, 64.00), (5.00, 0.50)
PRICES: dict[str, Price] = {
    "gpt-realtime-2.1": _realtime("gpt-realtime-2.1", _TEXT_2, _AUDIO_2, _IMAGE_2),
    "gpt-realtime-2": _realtime("gpt-realtime-2", _TEXT_2, _AUDIO_2, _IMAGE_2),
    "gpt-realtime-1.5": _realtime("gpt-realtime-1.5", (4.00, 0.40, 16.00), (32.00, 0.40, 64.00)),
    "gpt-realtime-2.1-mini": _realtime("gpt-realtime-2.1-mini", (0.60, 0.06, 2.40), (10.00, 0.30, 20.00)),
    # The transcription of what visitors say, billed on its own (its usage comes with each transcript).
    "gpt-4o-mini-transcribe": Price(
        text_in=1.25, audio_in=3.00, text_out=5.00, dated="2026-12-01", source="https://openai.com/api/pricing/"
    ),
    # The active rate (openai-live.md §5.1): gpt-live-1.1's $0.02 standby minutes are not told apart in
    # usage (§5.4), so a cost here is an upper bound for a session that stood by.
    "gpt-live-1": Price(per_minute=0.05, dated="2026-11-20", source=_model_page("gpt-live-1")),
    "gpt-live-1.1": Price(per_minute=0.05, dated="2026-11-20", source=_model_page("gpt-live-1.1")),
}


def price_of(model: str, overrides: Mapping[str, Price] | None = None) -> Price | None:
    """``model``'s prices: the config file's if it names the model, else the table's; None: unknown."""
    return (overrides or {}).get(model) or PRICES.get(model)


def parse_prices(table: Any, source: Path) -> dict[str, Price]:
    """The config file's ``[prices."model"]`` tables: each key of ``PRICE_KEYS`` a number of USD
    (per 1M tokens, or per minute), laid over the table's entry for that model.

    Raises:
      ConfigError: one line naming the model and key at fault.
    """
    if not isinstance(table, dict):
        raise ConfigError(f'--config: {source}: prices must be tables: [prices."gpt-realtime-2.1"]')
    prices = {}
    for model, entry in table.items():
        if not isinstance(entry, dict) or not entry:
            raise ConfigError(f"--config: {source}: prices.{model!r} must be a table of {', '.join(PRICE_KEYS)}")
        values: dict[str, float] = {}
        for key, value in entry.items():
            if key not in PRICE_KEYS:
                raise ConfigError(
                    f"--config: {source}: prices.{model!r}: unknown key {key!r} ({', '.join(PRICE_KEYS)})"
                )
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or not 0 <= value <= 10_000:
                raise ConfigError(
                    f"--config: {source}: prices.{model!r}.{key}: {value!r} is not a price in USD (0-10000)"
                )
            values[key] = float(value)
        base = PRICES.get(model, Price())
        prices[model] = dataclasses.replace(base, **values, dated="", source=f"config {source}")
    return prices


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


def per_minute(
    model: str,
    overrides: Mapping[str, Price] | None,
    *,
    final: float | None = None,
    billed: float | None = None,
    age: float = 0.0,
) -> Minutes:
    """What a call of a per-minute ``model`` has been billed, at its rate (the config's
    ``overrides`` over the table's; a model in neither costs None, unknown, never guessed), never
    less than the start charge. The one place that decides which seconds count: OpenAI's final count
    (``final``: ``session.closed``, or the hang-up's) if it was heard; else an upper bound, the
    larger of the last cumulative count (``billed``, OpenAI's or a page's) and the call's ``age``,
    marked estimated."""
    price = price_of(model, overrides)
    rate = price.per_minute if price is not None else None
    seconds = max(START_CHARGE_S, final if final is not None else max(billed or 0.0, age))
    return Minutes(seconds, None if rate is None else seconds / 60 * rate, estimated=final is None)
