"""``voicekiosk tools``: the agent's tools, and running one by hand."""

from __future__ import annotations

from typing import Any

import click

from voicekiosk.cli import cli
from voicekiosk.cli.common import build_settings, print_table, reports_errors, settings_options
from voicekiosk.settings import Settings


@cli.group("tools", invoke_without_command=True)
@settings_options
@click.pass_context
@reports_errors
def tools(ctx: click.Context, **flags: Any) -> None:
    """List every tool the agent will have, where it comes from, and whether it answers now."""
    import asyncio

    from voicekiosk.tools.inventory import inventory

    ctx.obj = settings = build_settings(flags)
    if ctx.invoked_subcommand is not None:
        return
    rows = asyncio.run(inventory(settings))
    if not rows:
        click.echo("No tools: declare [[tools]], [[mcp]] or [knowledge] in the config file (see README).")
        return
    print_table([(r.name, r.source, r.status) for r in rows], header=("tool", "from", "now"))
    if settings.tools.runs_here and not settings.runs_tools:
        click.echo("Note: tools run over the server's sideband: --sdp server only (GPT-Live always is).")


@tools.command("call")
@click.argument("name")
@click.argument("arguments", default="{}")
@click.pass_obj
@reports_errors
def tools_call(settings: Settings, name: str, arguments: str) -> None:
    """Run tool NAME with ARGUMENTS (JSON) as the agent would, and print what it would hear."""
    import asyncio

    from voicekiosk.tools.inventory import call

    outcome = asyncio.run(call(settings, name, arguments))
    click.echo(outcome.output)
    if not outcome.ok:
        raise SystemExit(1)
