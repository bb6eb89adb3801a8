"""Where the templates and static files are: inside the wheel, or beside the package in a checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def asset_dir(name: str) -> Path:
    """``templates`` or ``static``: the wheel's copy first, else the checkout's top-level folder."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"voicekiosk's {name}/ folder is missing; reinstall voicekiosk")
