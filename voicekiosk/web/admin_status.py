"""What ``/admin`` shows, as text ready to place: the first paint (Jinja) and each refresh
(``/admin/status``, placed by ``static/admin.js`` with ``textContent``) come from this one view, so
neither formats anything itself."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from voicekiosk import __version__
from voicekiosk.upstream.record import ENDINGS, CallRecord
from voicekiosk.watch import spend
from voicekiosk.watch.metrics import UNKNOWN_TOOL
from voicekiosk.watch.recent import clock_time
from voicekiosk.web.appkeys import CALLS, CERTIFICATES, EVENTS, MCP, METRICS, PROBLEMS, SETTINGS, STARTED, TOOLS

SOON_DAYS = 14  # a certificate expiring sooner is flagged


def status(app: web.Application) -> dict[str, Any]:
    """The whole page's content now (JSON-able; every value a string or a list of them)."""
    settings = app[SETTINGS]
    calls = app[CALLS]
    running = calls.calls()
    return {
        "summary": [
            ["version", __version__],
            ["engine", f"{settings.engine} ({settings.model})"],
            ["up for", duration(time.monotonic() - app[STARTED])],
            ["lines", f"{len(running)} of {settings.max_calls} busy"],
        ],
        "calls": [{"id": record.call_id, "cells": call_cells(app, record)} for record in running],
        "totals": totals(app),
        "problems": [
            [clock_time(p.at), p.level.lower(), p.text + (f" ({p.count} times)" if p.count > 1 else "")]
            for p in app[PROBLEMS].problems()
        ],
        "tools": tool_rows(app),
        "certificates": certificate_rows(app),
    }


def call_cells(app: web.Application, record: CallRecord) -> list[str]:
    """Client, engine, duration, state, usage so far, cost so far."""
    state = app[EVENTS].state_of(record.call_id) or ("no page" if record.owners == 0 else "?")
    return [
        record.client,
        app[SETTINGS].engine,
        duration(record.seconds),
        state,
        usage(record),
        money(spend.call_cost(app, record)),
    ]


def usage(record: CallRecord) -> str:
    """Tokens (or billed seconds) counted so far, and whose count it is."""
    if record.billed_seconds is not None:
        text = f"{record.billed_seconds:.0f} s billed"
    elif record.input_tokens or record.output_tokens:
        text = f"{record.input_tokens} in · {record.output_tokens} out"
    else:
        return "none yet"
    by = record.usage_by
    return text if by == "server" else f"{text} ({'partly ' if by == 'server+page' else ''}page's count)"


def totals(app: web.Application) -> list[list[str]]:
    """Today's totals from the call record, else what this server counted since it started."""
    today = spend.today(app)
    if today is not None:
        budget = money(today.budget) if today.budget is not None else "none set"
        budget += " (spent: new calls are refused)" if today.spent else ""
        return [
            ["today: calls", str(today.calls)],
            ["today: minutes", f"{today.seconds / 60:.1f}"],
            [
                "today: cost",
                money(today.cost) + (f" (+ {today.unknown} calls of unknown cost)" if today.unknown else ""),
            ],
            ["budget a day", budget],
        ]
    metrics = app[METRICS]
    started = metrics.counts(metrics.started).get((), 0)
    rows = [["today", "not recorded (no call record)"], ["calls since start", f"{started:.0f}"]]
    ended = metrics.counts(metrics.ended)
    rows += [[f"ended {text}", f"{ended[(reason,)]:.0f}"] for reason, text in ENDINGS.items() if ended.get((reason,))]
    return rows


def tool_rows(app: web.Application) -> list[list[str]]:
    """Each tool: name, where it comes from, whether it can run, calls ok and failed."""
    runner, servers = app[TOOLS], app[MCP]
    metrics = app[METRICS]
    counts = metrics.counts(metrics.tool_calls)
    connected = {f"mcp {server.spec.name}": server.connected for server in (servers.servers if servers else [])}
    rows = []
    for name, tool in (runner.tools if runner else {}).items():
        ready = "ready" if connected.get(tool.source, True) else "reconnecting"
        rows.append([name, tool.source, ready, _count(counts, name, "ok"), _count(counts, name, "failed")])
    if counts.get((UNKNOWN_TOOL, "failed")):
        rows.append([UNKNOWN_TOOL, "asked for by the model", "-", "0", _count(counts, UNKNOWN_TOOL, "failed")])
    return rows


def certificate_rows(app: web.Application) -> list[list[str]]:
    """Each certificate: which, when it expires, days left (flagged when soon)."""
    rows = []
    now = datetime.now(UTC)
    for name, not_after in app[CERTIFICATES].expiry().items():
        label = "local CA" if name == "ca" else "server certificate"
        if not_after is None:
            rows.append([label, "cannot be read", "-"])
            continue
        days = (not_after - now).days
        rows.append([label, f"{not_after:%Y-%m-%d}", f"{days}" + (" (renew soon)" if days < SOON_DAYS else "")])
    return rows


def duration(seconds: float) -> str:
    """``0:42``, ``12:05``, ``3:02:10``; days beyond a day (``4 d 3:02:10``)."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}" if hours or days else f"{minutes}:{secs:02d}"
    return f"{days} d {clock}" if days else clock


def money(usd: float | None) -> str:
    return "unknown" if usd is None else f"${usd:.3f}"


def _count(counts: dict[tuple[str, ...], float], name: str, outcome: str) -> str:
    return f"{counts.get((name, outcome), 0):.0f}"
