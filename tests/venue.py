"""A venue's ``[brand]`` for the tests: a light museum look (title, an SVG logo, colours that pass
WCAG AA), written to a folder as a config file would have it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voicekiosk.brand.config import Brand, parse_brand

LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40">'
    b'<rect width="120" height="40" fill="#1d4ed8"/></svg>'
)
MUSEUM = {"title": "City Museum", "logo": "logo.svg", "accent": "#1d4ed8", "background": "#f8fafc", "text": "#0f172a"}


def museum(folder: Path, **extra: Any) -> Brand:
    """The museum's brand (``extra`` keys added), its logo written into ``folder``."""
    (folder / "logo.svg").write_bytes(LOGO)
    return parse_brand(MUSEUM | extra, folder / "voicekiosk.toml")
