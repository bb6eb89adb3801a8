"""``voicekiosk usage`` and ``voicekiosk calls``: what the call record says (it is read while the
server writes it)."""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

import click

from voicekiosk.cli import cli
from voicekiosk.cli.common import build_settings, print_table, reports_errors, storage_options
from voicekiosk.ledger.store import FILE, Store
from voicekiosk.settings import Settings


def _open(settings: Settings) -> Store | None:
    store = Store.read(settings.data_dir)  # read-only: the CLI never migrates it
    if store is None:
        click.echo(f"No calls recorded yet (no {FILE} in {settings.data_dir}).")
    return store


@cli.command("usage")
@storage_options
@click.option("--days", type=click.IntRange(1, 3660), default=7, show_default=True, help="How many days back.")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object per day and client.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@reports_errors
def usage_command(days: int, as_json: bool, as_csv: bool, **flags: Any) -> None:
    """Per day and per client: calls, minutes, tokens and estimated cost."""
    from voicekiosk.ledger.book import venue_today
    from voicekiosk.ledger.reports import dollars, usage

    if as_json and as_csv:
        raise click.UsageError("--json or --csv, not both")
    settings = build_settings(flags)
    store = _open(settings)
    if store is None:
        return
    with store:
        rows = usage(store, days, venue_today(settings))
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2))
    elif as_csv:
        out = csv.DictWriter(sys.stdout, ["day", "client", "calls", "minutes", "tokens", "cost", "unknown"])
        out.writeheader()
        out.writerows(row.as_dict() for row in rows)
    elif not rows:
        click.echo(f"No calls in the last {days} day(s).")
    else:
        shown = [
            (r.day, r.client, str(r.calls), f"{r.minutes:.1f}", str(r.tokens), dollars(r.cost, r.unknown)) for r in rows
        ]
        print_table(shown, header=("day", "client", "calls", "minutes", "tokens", "cost (estimated)"))
        total = sum(r.cost for r in rows)
        click.echo(f"Total: {dollars(total, sum(r.unknown for r in rows))} over {sum(r.calls for r in rows)} call(s).")


@cli.command("calls")
@storage_options
@click.option("--last", type=click.IntRange(1, 10_000), default=20, show_default=True, help="How many calls.")
@click.option("--json", "as_json", is_flag=True, help="JSON: one object per call.")
@reports_errors
def calls_command(last: int, as_json: bool, **flags: Any) -> None:
    """The latest calls: when, who, how long, why they ended, and what they cost."""
    from voicekiosk.ledger.book import venue_zone
    from voicekiosk.ledger.reports import dollars, last_calls

    settings = build_settings(flags)
    store = _open(settings)
    if store is None:
        return
    with store:
        rows = last_calls(store, last, venue_zone(settings))
    if as_json:
        click.echo(json.dumps([row.as_dict() for row in rows], indent=2))
        return
    if not rows:
        click.echo("No calls recorded yet.")
        return
    shown = [
        (
            r.started, r.call_id, r.client, "-" if r.minutes is None else f"{r.minutes:.1f}", r.reason,
            str(r.tokens), dollars(r.cost), r.usage_by, f"{r.tool_calls}/{r.tool_errors}", str(r.upstream_errors),
        )
        for r in rows
    ]  # fmt: skip
    header = ("started", "call", "client", "min", "ended", "tokens", "cost", "counted by", "tools/failed", "errors")
    print_table(shown, header=header)
