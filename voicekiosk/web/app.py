"""``create_app``: the one aiohttp application, used by the CLI and by every test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from aiohttp import web

from voicekiosk.redact import register_secret
from voicekiosk.settings import Settings
from voicekiosk.tls.profile import CaInfo
from voicekiosk.tools.mcp_local import McpServers
from voicekiosk.upstream.calls import ORPHAN_GRACE, CallRegistry
from voicekiosk.upstream.engines import open_engine
from voicekiosk.web.access import Access, load_token
from voicekiosk.web.appkeys import ACCESS, CA, CALLS, ENGINE, EVENTS, HOSTS, MCP, MINTER, SETTINGS, STATIC
from voicekiosk.web.assets import asset_dir, setup_templates
from voicekiosk.web.events import EventHub
from voicekiosk.web.hosts import KnownHosts, hosts_middleware
from voicekiosk.web.limits import LIMITS, Limits, websocket_limit
from voicekiosk.web.middleware import content_security_policy, errors_middleware, origin_middleware, security_headers
from voicekiosk.web.routes import MAX_SDP_BYTES, routes
from voicekiosk.web.static_files import StaticFiles


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    orphan_grace: float = ORPHAN_GRACE,
    ca: CaInfo | None = None,
    limits: Limits = LIMITS,
) -> web.Application:
    """Build the voicekiosk web app.

    Args:
      settings: the configuration.
      ca: the local CA the page is served under (its fingerprint is shown on the page).
      transport: an httpx transport for the upstream (tests); default: the network.
      orphan_grace: seconds a call may go without a page before it is hung up.
      limits: the WebSocket caps (the connection caps are the server's).
    """
    register_secret(settings.api_key)
    access = Access(settings, None if settings.open else load_token(settings.data_dir))
    hosts = KnownHosts(settings)
    app = web.Application(
        client_max_size=MAX_SDP_BYTES,
        middlewares=[
            security_headers(content_security_policy(settings)),
            errors_middleware,
            hosts_middleware(hosts),
            access.middleware(),
            origin_middleware,
            websocket_limit(limits),
        ],
    )
    app[SETTINGS] = settings
    app[ACCESS] = access
    app[HOSTS] = hosts
    app[CA] = ca

    async def upstream_ctx(app: web.Application) -> AsyncIterator[None]:
        app[ENGINE], app[MINTER] = open_engine(settings, transport=transport)
        app[CALLS] = CallRegistry(
            app[ENGINE],
            max_calls=settings.max_calls,
            ticket_ttl=settings.token_ttl,
            orphan_grace=orphan_grace,
            model=settings.model,
        )
        app[CALLS].start()
        app[EVENTS] = EventHub(app[CALLS], browser_sdp=settings.sdp == "browser")
        yield
        await app[CALLS].close()
        await app[ENGINE].aclose()

    async def close_sockets(app: web.Application) -> None:
        await app[EVENTS].close()  # before cleanup: open sockets would hold shutdown up

    app.on_shutdown.append(close_sockets)
    app.cleanup_ctx.append(mcp_ctx)
    app.cleanup_ctx.append(upstream_ctx)
    setup_templates(app)
    app.router.add_routes(routes)
    app[STATIC] = StaticFiles(asset_dir("static"))
    app.router.add_get("/static/{name}", app[STATIC].handle)
    return app


async def mcp_ctx(app: web.Application) -> AsyncIterator[None]:
    """The local ``[[mcp]]`` servers run as long as the app: started (and listed) before it serves,
    stopped with it. A server that cannot start stops start-up, naming it."""
    tools = app[SETTINGS].tools
    servers = None
    if tools.mcp:
        taken = [s.name for s in tools.webhooks] + [s.name for s in tools.remote_mcp] + list(tools.enabled_builtins)
        servers = McpServers(tools.mcp, reserved=taken)
        await servers.start()
    app[MCP] = servers
    try:
        yield
    finally:
        if servers is not None:
            await servers.stop()
