"""Where the templates and static files are (inside the wheel, or beside the package in a
checkout), and the one Jinja setup both apps use."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from voicekiosk.web.appkeys import SETTINGS

_PACKAGE = Path(__file__).resolve().parent.parent


@cache
def asset_dir(name: str) -> Path:
    """``templates`` or ``static``: the wheel's copy first, else the checkout's top-level folder."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"voicekiosk's {name}/ folder is missing; reinstall voicekiosk")


def setup_templates(app: web.Application) -> None:
    """Render ``templates/`` for ``app``, every value escaped; every page gets the venue's ``brand``
    (None without a ``[brand]``): its stylesheet, title and logo."""
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(asset_dir("templates")),
        autoescape=jinja2.select_autoescape(default=True),
    )
    env.globals["brand"] = app[SETTINGS].brand
