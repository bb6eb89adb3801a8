"""``create_app``: the one aiohttp application, used by the CLI and by every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime

import httpx
from aiohttp import web

from voicekiosk.languages import table_dir
from voicekiosk.ledger.book import open_book
from voicekiosk.ledger.budget import Budget
from voicekiosk.redact import register_secret
from voicekiosk.settings import Settings
from voicekiosk.tls.profile import CaInfo
from voicekiosk.tools.mcp_remote import remote_mcp_declarations
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.tools.toolbox import mcp_servers, open_toolbox
from voicekiosk.upstream.calls import ORPHAN_GRACE, CallRegistry
from voicekiosk.upstream.control import CallControl
from voicekiosk.upstream.engines import open_engine, sideband_dialect
from voicekiosk.upstream.sideband import BACKOFF
from voicekiosk.web.access import Access, load_token
from voicekiosk.web.admin import add_watch
from voicekiosk.web.admin_access import AdminAccess
from voicekiosk.web.appkeys import (
    ACCESS,
    ADMIN,
    BUDGET,
    CA,
    CALLS,
    CLOCK,
    CONTROL,
    ENGINE,
    EVENTS,
    HOSTS,
    LEDGER,
    MCP,
    MINTER,
    SETTINGS,
    STATIC,
    TOOLS,
)
from voicekiosk.web.assets import asset_dir, setup_templates
from voicekiosk.web.brand_site import add_brand_routes
from voicekiosk.web.caller import PageCallers
from voicekiosk.web.events import EventHub
from voicekiosk.web.hosts import KnownHosts, hosts_middleware
from voicekiosk.web.limits import LIMITS, Limits, websocket_limit
from voicekiosk.web.middleware import content_security_policy, errors_middleware, origin_middleware, security_headers
from voicekiosk.web.opening import routes as hours_routes
from voicekiosk.web.routes import MAX_SDP_BYTES, routes
from voicekiosk.web.static_files import StaticFiles
from voicekiosk.web.triggers import routes as trigger_routes


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    orphan_grace: float = ORPHAN_GRACE,
    ca: CaInfo | None = None,
    limits: Limits = LIMITS,
    sideband_backoff: Sequence[float] = BACKOFF,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    budget_timing: Mapping[str, float] | None = None,
) -> web.Application:
    """Build the voicekiosk web app.

    Args:
      settings: the configuration.
      ca: the local CA the page is served under (its fingerprint is shown on the page).
      transport: an httpx transport for the upstream (tests); default: the network.
      orphan_grace: seconds a call may go without a page before it is hung up.
      limits: the WebSocket caps (the connection caps are the server's).
      sideband_backoff: seconds before each reopening of a call's sideband, then it gives up.
      clock: now, aware (tests: a venue's morning); the opening hours go by it.
      budget_timing: ``Budget``'s ``every`` and ``grace`` (tests: quicker).

    Raises:
      ConfigError: a tool's secret is missing from the environment.
    """
    register_secret(settings.api_key)
    access = Access(settings, None if settings.open else load_token(settings.data_dir))
    admin = AdminAccess(settings.data_dir)
    hosts = KnownHosts(settings)
    app = web.Application(
        client_max_size=MAX_SDP_BYTES,
        middlewares=[
            security_headers(content_security_policy(settings)),
            errors_middleware,
            hosts_middleware(hosts),
            access.middleware(),
            admin.middleware(),
            origin_middleware,
            websocket_limit(limits),
        ],
    )
    app[SETTINGS] = settings
    app[ACCESS] = access
    app[ADMIN] = admin
    app[HOSTS] = hosts
    app[CA] = ca
    app[CLOCK] = clock
    toolbox = open_toolbox(settings.tools, settings.data_dir)  # secrets read now: one missing stops start-up

    async def upstream_ctx(app: web.Application) -> AsyncIterator[None]:
        mcp = app[MCP]  # started (and listed) by mcp_ctx, before this
        app[TOOLS] = runner = toolbox.runner(mcp.tools if mcp is not None else ())
        callers = PageCallers()  # each call's tools act on its page through the hub (attached below)
        control = None
        if settings.runs_tools:  # a sideband on every call this server makes: tools, and OpenAI's count
            dialect = sideband_dialect(settings)
            control = CallControl(
                settings, runner or ToolRunner(()), backoff=sideband_backoff, dialect=dialect, callers=callers
            )
        app[CONTROL] = control
        await toolbox.start()
        # Function tools need this server's sideband; remote MCP servers are OpenAI's to call, so they
        # work in either SDP mode (with --sdp browser they go in the ephemeral key's session).
        declared = control.runner.declarations() if control is not None else []
        declared += remote_mcp_declarations(settings.tools.remote_mcp)
        sidebands = control.sideband if control is not None else None
        app[ENGINE], app[MINTER] = open_engine(settings, transport=transport, tools=declared, sidebands=sidebands)
        app[CALLS] = CallRegistry(
            app[ENGINE],
            max_calls=settings.max_calls,
            ticket_ttl=settings.token_ttl,
            orphan_grace=orphan_grace,
            watcher=control,
        )
        app[CALLS].start()
        if control is not None:
            control.notes = app[CALLS]
        app[LEDGER] = open_book(settings, clock)  # the venue's day by the app's clock, as its hours
        app[LEDGER].attach(app[CALLS])
        app[LEDGER].start()
        app[BUDGET] = Budget(settings, app[LEDGER], app[CALLS], app[ENGINE], control, **(budget_timing or {}))
        app[BUDGET].start()
        keep = app[LEDGER].transcript if settings.keep_transcripts else None
        app[EVENTS] = EventHub(app[CALLS], browser_sdp=settings.sdp == "browser", keep=keep)
        callers.attach(app[EVENTS], app[CALLS])
        app[CALLS].tell_page = app[EVENTS].push  # the ends the server decides are told to the page first
        yield
        await app[BUDGET].close()
        await app[CALLS].close()  # every call ended: each row written
        await app[LEDGER].aclose()
        if control is not None:
            await control.aclose()
        await app[ENGINE].aclose()
        await toolbox.aclose()

    async def close_sockets(app: web.Application) -> None:
        await app[EVENTS].close()  # before cleanup: open sockets would hold shutdown up

    app.on_shutdown.append(close_sockets)
    app.cleanup_ctx.append(mcp_ctx)
    app.cleanup_ctx.append(upstream_ctx)
    add_watch(app, ca)  # /admin and /metrics
    setup_templates(app)
    app.router.add_routes(routes)
    app.router.add_routes(trigger_routes)
    app.router.add_routes(hours_routes)
    app[STATIC] = StaticFiles(asset_dir("static"))
    app.router.add_get("/static/{name}", app[STATIC].handle)
    app.router.add_get("/static/i18n/{name}", StaticFiles(table_dir()).handle)  # languages.py's tables
    add_brand_routes(app, settings.brand)
    return app


async def mcp_ctx(app: web.Application) -> AsyncIterator[None]:
    """The local ``[[mcp]]`` servers run as long as the app: started (and listed) before it serves,
    stopped with it. A server that cannot start stops start-up, naming it."""
    servers = mcp_servers(app[SETTINGS].tools)
    if servers is not None:
        await servers.start()
    app[MCP] = servers
    try:
        yield
    finally:
        if servers is not None:
            await servers.stop()
