"""Running voicekiosk: ``serve``, ``kiosk``, and ``config`` (what it would run with)."""

from __future__ import annotations

from typing import Any

import click

from voicekiosk.cli import cli
from voicekiosk.cli.common import build_settings, print_table, reports_errors, settings_options


@cli.command()
@settings_options
@reports_errors
def serve(**flags: Any) -> None:
    """Serve the talking page over HTTPS and broker OpenAI sessions."""
    from voicekiosk.console import setup_logging
    from voicekiosk.server import run

    settings = build_settings(flags)
    run(settings, setup_logging(settings.verbosity))


@cli.command()
@settings_options
@click.option("--browser-arg", "browser_args", multiple=True, help="Extra flag for the browser (repeatable).")
@click.option("--window", is_flag=True, help="In a window instead of full screen: a try on a desktop.")
@click.option(
    "--hung-after",
    type=click.FloatRange(min=12),
    default=30,
    show_default=True,
    metavar="SECONDS",
    help="Restart the browser when its page (which beats every 10 s) has been silent this long.",
)
@reports_errors
def kiosk(browser_args: tuple[str, ...], window: bool, hung_after: float, **flags: Any) -> None:
    """Serve, and show the page full screen in Chrome/Chromium on this machine (kept alive)."""
    import asyncio

    from voicekiosk.console import setup_logging
    from voicekiosk.kiosk import run_kiosk

    settings = build_settings(flags)
    console = setup_logging(settings.verbosity)
    asyncio.run(run_kiosk(settings, console, browser_args=browser_args, window=window, silent_after=hung_after))


@cli.command("config")
@settings_options
@reports_errors
def show_config(**flags: Any) -> None:
    """Print the effective configuration and where each value came from."""
    settings = build_settings(flags)
    rows = [(name, value if len(value) < 70 else value[:67] + "...", src) for name, value, src in settings.describe()]
    print_table(rows, header=("option", "value", "from"))
