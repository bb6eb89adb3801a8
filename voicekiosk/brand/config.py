"""The config file's ``[brand]`` table: a venue's title, logo, colours and font scale, every key
checked (one line naming the key when something is wrong) and the colours' contrast with it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicekiosk.brand.contrast import AA_TEXT, AA_UI, mix, ratio, readable_on, rgb
from voicekiosk.errors import ConfigError
from voicekiosk.images import raster_type

MAX_LOGO_BYTES = 512 * 1024  # a kiosk logo, not a photo
MAX_TITLE = 80
KEYS = ("title", "logo", "accent", "background", "text", "font_scale")
# The page's own colours (static/style.css :root): the ones a brand may replace and the state
# colours (meters, dots) that must stay visible on whatever background it sets.
PAGE = {"background": "#101418", "text": "#e8edf2", "accent": "#0f766e"}
STATES = {"--you": "#2dd4bf", "--agent": "#f59e0b", "--ok": "#4ade80", "--bad": "#f87171", "--work": "#60a5fa"}


@dataclass(frozen=True)
class Logo:
    name: str  # the file's name, for `voicekiosk config`
    body: bytes = field(repr=False)
    content_type: str


@dataclass(frozen=True, kw_only=True)
class Brand:
    """A venue's look; colours None keep the page's own."""

    title: str = ""
    logo: Logo | None = None
    accent: str | None = None
    background: str | None = None
    text: str | None = None
    font_scale: float = 1.0

    def colour(self, key: str) -> str:
        return getattr(self, key) or PAGE[key]

    def palette(self) -> dict[str, str]:
        """The CSS custom properties this brand sets (``--bg`` …), each a ``#rrggbb``."""
        props: dict[str, str] = {}
        if self.background or self.text:
            bg, text = self.colour("background"), self.colour("text")
            panel = mix(bg, text, 0.06)
            shades = (mix(bg, text, w / 20) for w in range(11, 21))  # the dimmest that still reads as text
            muted = next((m for m in shades if _legible(m, bg, panel)), text)
            props |= {"--bg": bg, "--panel": panel, "--text": text, "--muted": muted}
            # The buttons that are not the accent (Mute, Retry): a step from the background towards the
            # text, as far as their label still reads; pressed (muted), the page's red, labelled to read.
            grounds = (mix(bg, text, w / 100) for w in range(15, -1, -3))
            props["--control"] = next((g for g in grounds if ratio(text, g) >= AA_TEXT), bg)
            pressed = _visible(STATES["--bad"], text, bg, panel)
            props |= {"--on-control": text, "--pressed": pressed, "--on-pressed": readable_on(pressed)}
        if self.background:  # the meters and state dots keep 3:1 on it: each moved towards the text until they do
            props |= {name: _visible(colour, text, bg, panel) for name, colour in STATES.items()}
        if self.accent:
            props |= {"--accent": self.accent, "--on-accent": readable_on(self.accent)}
        return props

    def describe(self) -> list[tuple[str, str]]:
        """(key, value) rows for `voicekiosk config`: the keys set."""
        rows = [("title", self.title)] if self.title else []
        if self.logo:
            rows.append(("logo", f"{self.logo.name} ({self.logo.content_type}, {len(self.logo.body)} bytes)"))
        rows += [(key, getattr(self, key)) for key in ("accent", "background", "text") if getattr(self, key)]
        if self.font_scale != 1.0:
            rows.append(("font_scale", f"{self.font_scale:g}"))
        return rows


def _legible(colour: str, *grounds: str) -> bool:
    return all(ratio(colour, g) >= AA_TEXT for g in grounds)


def _visible(colour: str, text: str, *grounds: str) -> str:
    """``colour``, or the first step of it towards ``text`` that has 3:1 on every ground."""
    steps = (mix(colour, text, w / 10) for w in range(11))
    return next((c for c in steps if all(ratio(c, g) >= AA_UI for g in grounds)), text)


def parse_brand(table: Any, source: Path) -> Brand:
    """The ``[brand]`` table of the config file ``source`` (the logo's path is relative to its folder).

    Raises:
      ConfigError: one line naming the key and what is wrong, or the two colours and their ratio.
    """
    if not isinstance(table, Mapping):
        raise ConfigError("[brand]: expected a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise ConfigError(f"[brand] {unknown[0]}: unknown key (known: {', '.join(KEYS)})")
    title = table.get("title", "")
    if not isinstance(title, str) or len(title.strip()) > MAX_TITLE or any(c < " " for c in title):
        raise ConfigError(f"[brand] title: expected one line of text, at most {MAX_TITLE} characters")
    scale = table.get("font_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0.8 <= scale <= 2.0:
        raise ConfigError(f"[brand] font_scale: {scale!r} is not a number from 0.8 to 2.0")
    logo = table.get("logo")
    brand = Brand(
        title=title.strip(),
        logo=None if logo is None else read_logo(logo, source.parent),
        font_scale=float(scale),
        **{key: _colour(table, key) for key in ("accent", "background", "text")},
    )
    check_contrast(brand)
    return brand


def _colour(table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    try:
        rgb(value if isinstance(value, str) else "")
    except ValueError:
        raise ConfigError(f'[brand] {key}: {value!r} is not a colour; write it as "#rrggbb"') from None
    return str(value).lower()


def read_logo(raw: Any, folder: Path) -> Logo:
    """The logo file, read once into memory: a PNG, JPEG, WebP or SVG of at most MAX_LOGO_BYTES."""
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError("[brand] logo: expected a file path")
    path = (folder / Path(raw).expanduser()).resolve()
    try:
        with path.open("rb") as file:
            body = file.read(MAX_LOGO_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"[brand] logo: cannot read {path}: {exc.strerror or exc}") from None
    if len(body) > MAX_LOGO_BYTES:
        raise ConfigError(f"[brand] logo: {path} is over {MAX_LOGO_BYTES // 1024} KB; use a smaller image")
    content_type = image_type(body)
    if content_type is None:
        raise ConfigError(f"[brand] logo: {path} is not a PNG, JPEG, WebP or SVG image")
    return Logo(path.name, body, content_type)


def image_type(body: bytes) -> str | None:
    """The image's media type from its first bytes (never from its name), or None."""
    if (raster := raster_type(body)) in ("image/png", "image/jpeg", "image/webp"):
        return raster
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"<svg", b"<?xml", b"<!--")) and b"<svg" in body[:4096]:
        return "image/svg+xml"
    return None


Pairing = tuple[str, str, str, str, float]  # (what, colour, on what, colour, least ratio)


def pairings(brand: Brand) -> list[Pairing]:
    """Every pair of colours on the page a brand changes, with the WCAG AA ratio it needs: 4.5:1 for
    text (the page's, the muted history, the button labels), 3:1 for the accent (buttons, the title)
    and the state colours (meters, dots). Those palette() derives are guards: it moves them until
    they pass."""
    bg, text = brand.colour("background"), brand.colour("text")
    props = brand.palette()
    pairs: list[Pairing] = []
    if brand.background or brand.text:
        pairs += [("text", text, "background", bg, AA_TEXT), ("text", text, "panel", props["--panel"], AA_TEXT)]
        pairs.append(("button label", props["--on-control"], "button", props["--control"], AA_TEXT))
        pairs.append(("pressed button label", props["--on-pressed"], "pressed button", props["--pressed"], AA_TEXT))
    if brand.accent or brand.background:
        pairs.append(("accent", brand.colour("accent"), "background", bg, AA_UI))
    if brand.background:
        pairs += [(f"state colour {name}", props[name], "background", bg, AA_UI) for name in STATES]
    return pairs


def check_contrast(brand: Brand) -> None:
    """WCAG AA for every pairing of the brand's colours (``pairings``).

    Raises:
      ConfigError: naming the two colours and the ratio found.
    """
    for fg_name, fg, bg_name, ground, minimum in pairings(brand):
        found = ratio(fg, ground)
        if found < minimum:
            raise ConfigError(
                f"[brand] {fg_name} {fg} on {bg_name} {ground} has contrast {found:.2f}:1; WCAG AA needs {minimum:g}:1"
            )
