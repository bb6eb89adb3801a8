"""The plain-HTTP setup site: how to trust the local CA on each platform, and the CA files.

Anything else asked of this port is redirected to the HTTPS page, so a typed ``http://`` URL
still lands where the microphone works.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from voicekiosk import net
from voicekiosk.settings import Settings
from voicekiosk.tls.profile import CaInfo, apple_profile
from voicekiosk.web.appkeys import CA, SETTINGS
from voicekiosk.web.assets import asset_dir, setup_templates
from voicekiosk.web.brand_site import add_brand_routes
from voicekiosk.web.hosts import KnownHosts, host_of, hosts_middleware
from voicekiosk.web.middleware import errors_middleware, security_headers
from voicekiosk.web.static_files import StaticFiles

SETUP_CSP = "default-src 'self'; frame-ancestors 'none'"
PLATFORMS = ("ios", "android", "macos", "windows", "chromeos", "linux", "firefox")


def guess_platform(user_agent: str) -> str:
    """Which instructions to open first; the others stay one tap away."""
    ua = user_agent.lower()
    if "firefox" in ua and "mobile" not in ua:
        return "firefox"
    for marker, platform in (
        ("iphone", "ios"),
        ("ipad", "ios"),
        ("android", "android"),
        ("cros", "chromeos"),
        ("macintosh", "macos"),
        ("windows", "windows"),
        ("linux", "linux"),
    ):
        if marker in ua:
            return platform
    return "linux"


def page_url(request: web.Request, path: str = "/") -> str:
    """The talking page (always HTTPS: this site exists for it) on the host this site was opened at."""
    return net.url("https", host_of(request.host) or "localhost", request.app[SETTINGS].port, path)


@aiohttp_jinja2.template("setup.html")
async def setup_page(request: web.Request) -> dict[str, Any]:
    return {
        "https_url": page_url(request),
        "platform": guess_platform(request.headers.get("User-Agent", "")),
        "ca": _ca(request),
    }


async def ca_pem(request: web.Request) -> web.Response:
    return _download(_ca(request).pem(), "application/x-pem-file", "voicekiosk-ca.pem")


async def ca_der(request: web.Request) -> web.Response:
    # DER as application/x-x509-ca-cert is what Android and Windows offer to install as a CA.
    return _download(_ca(request).der(), "application/x-x509-ca-cert", "voicekiosk-ca.crt")


async def profile(request: web.Request) -> web.Response:
    return _download(apple_profile(_ca(request)), "application/x-apple-aspen-config", "voicekiosk.mobileconfig")


async def to_https(request: web.Request) -> web.StreamResponse:
    # An access token sent here has crossed the network in the clear already: not echoed back
    # in the clear again (the device scans the QR code's HTTPS link instead).
    raise web.HTTPFound(page_url(request, str(request.rel_url.without_query_params("token"))))


def _ca(request: web.Request) -> CaInfo:
    ca = request.app[CA]
    assert ca is not None  # the setup site exists for the local CA
    return ca


def _download(body: bytes, content_type: str, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-cache"},
    )


def create_setup_app(settings: Settings, ca: CaInfo) -> web.Application:
    """The app served on ``--http-port``."""
    app = web.Application(
        middlewares=[
            security_headers(SETUP_CSP),
            errors_middleware,
            hosts_middleware(KnownHosts(settings)),
        ]
    )
    app[SETTINGS] = settings
    app[CA] = ca
    setup_templates(app)
    app.router.add_get("/", setup_page)
    app.router.add_get("/ca.pem", ca_pem)
    app.router.add_get("/ca.crt", ca_der)
    app.router.add_get("/voicekiosk.mobileconfig", profile)
    app.router.add_get("/static/{name}", StaticFiles(asset_dir("static")).handle)
    add_brand_routes(app, settings.brand)
    app.router.add_route("*", "/{tail:.*}", to_https)
    return app
