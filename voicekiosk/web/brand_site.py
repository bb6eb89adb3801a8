"""The venue's look on the page: ``/brand/brand.css`` (the ``[brand]`` colours and font scale as CSS
custom properties, so the CSP keeps ``style-src 'self'`` with no inline style) and ``/brand/logo``
(the logo, read at start and served from memory: no path reaches the disk)."""

from __future__ import annotations

import hashlib

from aiohttp import web
from aiohttp.typedefs import Handler

from voicekiosk.brand.config import Brand
from voicekiosk.brand.contrast import luminance
from voicekiosk.web.static_files import etag, from_memory

CSS_URL = "/brand/brand.css"
LOGO_URL = "/brand/logo"
# An SVG opened on its own is a document of our origin: it may run nothing and load nothing.
LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def stylesheet(brand: Brand) -> str:
    """The brand's CSS: custom properties the page's style.css uses, and the font scale."""
    palette = brand.palette()
    props = "".join(f"  {name}: {value};\n" for name, value in palette.items())
    if "--bg" in palette and luminance(palette["--bg"]) > 0.5:
        props += "  color-scheme: light;\n"  # scroll bars and form controls drawn for a light page
    if brand.font_scale != 1.0:
        props += f"  --font-scale: {brand.font_scale:g};\n"
    return f":root {{\n{props}}}\n" if props else ""


def add_brand_routes(app: web.Application, brand: Brand | None) -> None:
    """Serve ``brand``'s stylesheet and logo (nothing when there is no ``[brand]``)."""
    if brand is None:
        return
    css = stylesheet(brand).encode()
    app.router.add_get(CSS_URL, _fixed(css, "text/css", {}))
    if brand.logo is not None:
        logo = brand.logo
        app.router.add_get(LOGO_URL, _fixed(logo.body, logo.content_type, {"Content-Security-Policy": LOGO_CSP}))


def _fixed(body: bytes, content_type: str, headers: dict[str, str]) -> Handler:
    tag = etag(hashlib.sha256(body).digest())
    headers = headers | {"Cache-Control": "no-cache"}

    async def handle(request: web.Request) -> web.Response:
        return from_memory(request, body, content_type, tag, headers)

    return handle
