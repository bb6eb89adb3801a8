"""WCAG 2 contrast: relative luminance of sRGB colours and the ratio between two of them."""

from __future__ import annotations

import re

HEX = re.compile(r"#[0-9a-fA-F]{6}")
AA_TEXT = 4.5  # normal text (WCAG 1.4.3)
AA_UI = 3.0  # large text and user-interface parts: meters, state dots, buttons (1.4.3, 1.4.11)


def rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` as three 0-255 channels."""
    if not HEX.fullmatch(colour):
        raise ValueError(f"{colour!r} is not a #rrggbb colour")
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def luminance(colour: str) -> float:
    """Relative luminance, 0 (black) to 1 (white), as WCAG defines it."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ratio(a: str, b: str) -> float:
    """The contrast ratio of two colours, 1 to 21 (order does not matter)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def mix(a: str, b: str, weight: float) -> str:
    """``a`` moved ``weight`` (0-1) of the way towards ``b``."""
    return "#" + "".join(f"{round(x + (y - x) * weight):02x}" for x, y in zip(rgb(a), rgb(b), strict=True))


def readable_on(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (always at least 4.5:1)."""
    return "#000000" if ratio(colour, "#000000") >= ratio(colour, "#ffffff") else "#ffffff"
