"""Typed keys for the state every handler shares through ``request.app``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from voicekiosk.ledger.book import CallBook
from voicekiosk.ledger.budget import Budget
from voicekiosk.settings import Settings
from voicekiosk.tls.profile import CaInfo
from voicekiosk.tools.mcp_local import McpServers
from voicekiosk.tools.runner import ToolRunner
from voicekiosk.upstream.calls import CallRegistry
from voicekiosk.upstream.control import CallControl
from voicekiosk.upstream.engine import Engine
from voicekiosk.upstream.realtime import Minter
from voicekiosk.watch.certs import Certificates
from voicekiosk.watch.metrics import Metrics
from voicekiosk.watch.recent import RecentProblems
from voicekiosk.web.access import Access
from voicekiosk.web.admin_access import AdminAccess
from voicekiosk.web.events import EventHub
from voicekiosk.web.hosts import KnownHosts
from voicekiosk.web.static_files import StaticFiles

SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
ENGINE: web.AppKey[Engine] = web.AppKey("engine")
MINTER: web.AppKey[Minter | None] = web.AppKey("minter")  # None: the engine has no ephemeral keys
CALLS: web.AppKey[CallRegistry] = web.AppKey("calls", CallRegistry)
EVENTS: web.AppKey[EventHub] = web.AppKey("events", EventHub)
ACCESS: web.AppKey[Access] = web.AppKey("access", Access)
STATIC: web.AppKey[StaticFiles] = web.AppKey("static", StaticFiles)
CA: web.AppKey[CaInfo | None] = web.AppKey("ca")  # the local CA, None without one
TOOLS: web.AppKey[ToolRunner | None] = web.AppKey("tools")  # None: no tools configured
CONTROL: web.AppKey[CallControl | None] = web.AppKey("control")  # None: no sidebands (no tools, or not --sdp server)
HOSTS: web.AppKey[KnownHosts] = web.AppKey("hosts", KnownHosts)  # the names and LAN addresses it answers on
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("clock")  # now (aware): the opening hours' authority
MCP: web.AppKey[McpServers | None] = web.AppKey("mcp")  # the local [[mcp]] servers, None without any
ADMIN: web.AppKey[AdminAccess] = web.AppKey("admin", AdminAccess)  # who may see /admin and /metrics
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
PROBLEMS: web.AppKey[RecentProblems] = web.AppKey("problems", RecentProblems)  # the last WARNING+ lines
CERTIFICATES: web.AppKey[Certificates] = web.AppKey("certificates", Certificates)
STARTED: web.AppKey[float] = web.AppKey("started", float)  # time.monotonic() at create_app: the uptime's start
LEDGER: web.AppKey[CallBook] = web.AppKey("ledger", CallBook)  # the call record: today's totals, the budget
BUDGET: web.AppKey[Budget] = web.AppKey("budget", Budget)  # the day's budget and the longest call
