"""Running as a service: ``install-service`` (a systemd unit, enabled and started)."""

from __future__ import annotations

import os
from typing import Any

import click

from voicekiosk.cli import cli
from voicekiosk.cli.common import build_settings, reports_errors, storage_options


@cli.command("install-service")
@storage_options
@click.option("--kiosk", is_flag=True, help="Run `voicekiosk kiosk` in the desktop session instead of `serve`.")
@click.option(
    "--user/--system",
    "user",
    default=None,
    help="A unit of your own, or the system's (needs sudo). Default: --system as root, else --user; --kiosk: --user.",
)
@click.option("--dry-run", is_flag=True, help="Print the unit and the steps; write and change nothing.")
@reports_errors
def install_service(kiosk: bool, user: bool | None, dry_run: bool, **flags: Any) -> None:
    """Install a systemd unit that runs voicekiosk (kept up, restarted when stuck) with this
    config file and data directory, then enable and start it."""
    from voicekiosk.service.install import install, next_steps, plan

    if kiosk and user is False:
        raise click.UsageError("--kiosk runs in the desktop session, as a user unit: drop --system")
    system = not kiosk and (user is False or (user is None and os.geteuid() == 0))
    chosen = plan(build_settings(flags), kiosk=kiosk, system=system)
    systemctl = " ".join(chosen.systemctl)
    if dry_run:
        click.echo(f"# {chosen.path}")
        click.echo(chosen.text)
        click.echo("Would:")
        if chosen.key is not None:
            click.echo(f"  write the key (now in OPENAI_API_KEY) to {chosen.spec.key_file}, mode 0600")
        click.echo(f"  write {chosen.path}")
        click.echo(f"  {systemctl} daemon-reload && {systemctl} enable --now {chosen.spec.name}")
    else:
        install(chosen)
        if chosen.key is not None:
            click.echo(f"Wrote the key (from OPENAI_API_KEY) to {chosen.spec.key_file}, mode 0600.")
        click.echo(f"Wrote {chosen.path}; enabled and started {chosen.spec.name}.")
    for note in chosen.notes:
        click.echo(f"Note: {note}.")
    click.echo("Then:" if dry_run else "Now:")
    for step in next_steps(chosen):
        click.echo(f"  {step}")
