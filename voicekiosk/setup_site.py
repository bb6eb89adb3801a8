"""The plain-HTTP setup site: how to trust the local CA on each platform, and the CA files.

Anything else asked of this port is redirected to the HTTPS page, so a typed ``http://`` URL
still lands where the microphone works.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from voicekiosk import tls
from voicekiosk.access import KnownHosts, host_of
from voicekiosk.assets import asset_dir
from voicekiosk.settings import Settings
from voicekiosk.static_files import StaticFiles
from voicekiosk.tls import CaInfo

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CA: web.AppKey[CaInfo] = web.AppKey("ca")
HOSTS: web.AppKey[KnownHosts] = web.AppKey("hosts")
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


def https_url(request: web.Request, port: int) -> str:
    host = host_of(request.host) or "localhost"
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}"


@aiohttp_jinja2.template("setup.html")
async def setup_page(request: web.Request) -> dict[str, Any]:
    settings, ca = request.app[SETTINGS], request.app[CA]
    return {
        "https_url": https_url(request, settings.port) + "/",
        "platform": guess_platform(request.headers.get("User-Agent", "")),
        "fingerprint": ca.sha256,
        "ca_name": ca.name,  # how phones list it, e.g. in iOS's Certificate Trust Settings
    }


async def ca_pem(request: web.Request) -> web.Response:
    return _download(request.app[CA].pem(), "application/x-pem-file", "voicekiosk-ca.pem")


async def ca_der(request: web.Request) -> web.Response:
    # DER as application/x-x509-ca-cert is what Android and Windows offer to install as a CA.
    return _download(request.app[CA].der(), "application/x-x509-ca-cert", "voicekiosk-ca.crt")


async def apple_profile(request: web.Request) -> web.Response:
    return _download(tls.apple_profile(request.app[CA]), "application/x-apple-aspen-config", "voicekiosk.mobileconfig")


async def to_https(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(https_url(request, request.app[SETTINGS].port) + str(request.rel_url))


def _download(body: bytes, content_type: str, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-cache"},
    )


@web.middleware
async def headers_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if host_of(request.host) not in request.app[HOSTS]:
        # We redirect to the name we were asked for: only ever to one of our own.
        return web.Response(status=421, text="This server does not answer to that name.\n")
    response: web.StreamResponse = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
    return response


def create_setup_app(settings: Settings, ca: CaInfo) -> web.Application:
    """The app served on ``--http-port``."""
    app = web.Application(middlewares=[headers_middleware])
    app[SETTINGS] = settings
    app[CA] = ca
    app[HOSTS] = KnownHosts(settings)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(asset_dir("templates")),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.router.add_get("/", setup_page)
    app.router.add_get("/ca.pem", ca_pem)
    app.router.add_get("/ca.crt", ca_der)
    app.router.add_get("/voicekiosk.mobileconfig", apple_profile)
    app.router.add_get("/static/{name}", StaticFiles(asset_dir("static")).handle)
    app.router.add_route("*", "/{tail:.*}", to_https)
    return app
