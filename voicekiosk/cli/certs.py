"""The local CA and the tokens: ``cert`` (``export``, ``rotate``), ``trust``, ``token`` (``--admin``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from voicekiosk.cli import cli
from voicekiosk.cli.common import (
    build_settings,
    click_option,
    print_table,
    reports_errors,
    storage_options,
)
from voicekiosk.options import OPTIONS_BY_NAME
from voicekiosk.settings import Settings


@cli.group(invoke_without_command=True)
@storage_options
@click.pass_context
@reports_errors
def cert(ctx: click.Context, **flags: Any) -> None:
    """Show the local CA and the server certificate (paths, fingerprints, names, expiry)."""
    ctx.obj = build_settings(flags)
    if ctx.invoked_subcommand is not None:
        return
    from voicekiosk.tls.context import prepare, server_context
    from voicekiosk.tls.store import CertStore

    settings = ctx.obj
    files = prepare(settings)  # issues (or reissues) the certificate if it must
    server_context(files)  # and OpenSSL loads it as the server would
    if settings.cert:
        print_table([("certificate", f"{settings.cert} (your own, --cert)")])
        return
    info = CertStore(settings.data_dir).describe()
    print_table(
        [
            ("data dir", str(info.data_dir)),
            ("CA", f"{info.ca_path}  ({info.ca_subject})"),
            ("CA SHA-256", info.ca_sha256),
            ("CA vouches for", info.ca_vouches_for),
            ("CA expires", f"{info.ca_not_after:%Y-%m-%d}"),
            ("server cert", str(info.cert_path)),
            ("cert SHA-256", info.leaf_sha256 or "-"),
            ("SPKI (base64)", info.spki_sha256 or "-"),
            ("names", ", ".join(info.names)),
            ("cert expires", f"{info.leaf_not_after:%Y-%m-%d}" if info.leaf_not_after else "-"),
            ("left out", ", ".join(files.left_out) or "-"),
        ]
    )


@cert.command("export")
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.pass_obj
@reports_errors
def cert_export(settings: Settings, dest: Path) -> None:
    """Write the CA certificate as PEM and DER into DEST (default: here)."""
    from voicekiosk.tls.store import CertStore

    pem, der = CertStore(settings.data_dir).export_ca(dest)
    click.echo(f"{pem}\n{der}")


@cert.command("rotate")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click_option(OPTIONS_BY_NAME["san"])
@click.pass_obj
@reports_errors
def cert_rotate(settings: Settings, yes: bool, san: tuple[str, ...]) -> None:
    """Make a new CA. Every device must trust the new one; the old one stops working.

    The new CA may vouch for this machine's names, local names and private addresses, the
    configured --san names and those given here, and nothing else.
    """
    from voicekiosk.tls.leaf import extra_names
    from voicekiosk.tls.store import CertStore

    extra = build_settings({"san": san, "data_dir": str(settings.data_dir)}).san if san else ()
    if not yes:
        click.confirm("Make a new CA? Every phone and browser must then trust it again", abort=True)
    retired = CertStore(settings.data_dir).rotate(permit=[*extra_names(settings), *extra])
    click.echo(f"New CA made in {settings.data_dir}." + (f" The old certificates are in {retired}." if retired else ""))


@cli.command()
@storage_options
@click.option("--system", is_flag=True, help="Also the system-wide store (curl, apt, pip, ...), not only the browsers.")
@reports_errors
def trust(system: bool, **flags: Any) -> None:
    """Trust the local CA for websites in this machine's browsers (or print the commands to do so)."""
    from voicekiosk.tls.leaf import extra_names
    from voicekiosk.tls.store import CertStore
    from voicekiosk.tls.trust import install_trust, trust_commands

    settings = build_settings(flags)
    store = CertStore(settings.data_dir)
    store.ca(permit=extra_names(settings))
    results = install_trust(trust_commands(store.ca_path, system=system))
    if not results:
        click.echo(f"No trust store known on this system: import {store.ca_path} by hand.")
    for result in results:
        click.echo(f"{result.status:>6}  {result.step.store}" + (f": {result.detail}" if result.detail else ""))
        if result.status != "done":
            click.echo(f"        {result.step.shell()}")
    if any(r.status == "failed" for r in results):
        raise click.exceptions.Exit(1)


@cli.command()
@storage_options
@click.option("--rotate", is_flag=True, help="Replace the token: every device must scan the new QR code.")
@click.option(
    "--admin",
    is_flag=True,
    help="The admin token instead (made on first use): /admin and /metrics from other devices.",
)
@reports_errors
def token(rotate: bool, admin: bool, **flags: Any) -> None:
    """Print the access token that lets devices other than this one talk (or, with --admin, see
    the status page and the metrics)."""
    from voicekiosk.web.access import load_token

    settings = build_settings(flags)
    click.echo(load_token(settings.data_dir, rotate=rotate, admin=admin))
    if admin:
        click.echo(
            "Open /admin?admin=<token> once in a browser, or scrape /metrics with "
            "'Authorization: Bearer <token>'. A running server takes a new token at once.",
            err=True,
        )
    elif rotate:
        click.echo(
            "A running voicekiosk server takes the new token within a few seconds and shows its new QR code; "
            "devices let in with the old one must scan it.",
            err=True,
        )
