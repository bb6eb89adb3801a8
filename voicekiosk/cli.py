"""The ``voicekiosk`` command: flags and environment in, a Settings out, errors as exit codes.

Exit codes: 0 clean stop, 1 cannot start (the message says the fix), 2 bad usage or configuration.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from voicekiosk import __version__
from voicekiosk.errors import ConfigError, VoicekioskError
from voicekiosk.options import OPTIONS, OPTIONS_BY_NAME, Option
from voicekiosk.settings import Settings, load_settings


class ConfigProblem(click.ClickException):
    """A bad option value: one line, exit code 2."""

    exit_code = 2


def click_option(option: Option) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click option for a setting: parsed later by ``load_settings``, so its default is None."""
    help_text = f"{option.help} [env: {option.env}]"
    assert option.flag is not None
    if option.is_flag:
        name = option.flag.removeprefix("--")
        return click.option(f"--{name}/--no-{name}", option.name, default=None, help=help_text)
    return click.option(
        option.flag, option.name, default=None, multiple=option.multiple, metavar=option.parse.metavar, help=help_text
    )


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML file with options (default: ./voicekiosk.toml if present). [env: VOICEKIOSK_CONFIG]",
)


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one click option per setting that has a flag, plus --config and -v/-q."""
    for option in reversed(OPTIONS):
        if option.flag is not None:
            command = click_option(option)(command)
    command = click.option("-q", "--quiet", count=True, help="Less output (repeatable).")(command)
    command = click.option("-v", "--verbose", count=True, help="More output (repeatable).")(command)
    return config_option(command)


def storage_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Just what the certificate and token commands need: where the data lives."""
    return config_option(click_option(OPTIONS_BY_NAME["data_dir"])(command))


def build_settings(flags: dict[str, Any]) -> Settings:
    verbose, quiet = flags.pop("verbose", 0), flags.pop("quiet", 0)
    if verbose or quiet:
        flags["verbosity"] = max(-2, min(3, verbose - quiet))
    config_path = flags.pop("config_path", None)
    try:
        return load_settings(flags, config_path=config_path)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None


def reports_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Turn voicekiosk's own errors into one line and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except ConfigError as exc:
            raise ConfigProblem(str(exc)) from None
        except VoicekioskError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            pass

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="voicekiosk")
def cli() -> None:
    """Put a talking OpenAI Realtime agent on any screen: phone, laptop or kiosk."""


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
@reports_errors
def kiosk(browser_args: tuple[str, ...], **flags: Any) -> None:
    """Serve, and show the page full screen in Chrome/Chromium on this machine (kept alive)."""
    import asyncio

    from voicekiosk.console import setup_logging
    from voicekiosk.kiosk import run_kiosk

    settings = build_settings(flags)
    asyncio.run(run_kiosk(settings, setup_logging(settings.verbosity), browser_args=browser_args))


@cli.command("config")
@settings_options
@reports_errors
def show_config(**flags: Any) -> None:
    """Print the effective configuration and where each value came from."""
    settings = build_settings(flags)
    rows = [(name, value if len(value) < 70 else value[:67] + "...", src) for name, value, src in settings.describe()]
    print_table(rows, header=("option", "value", "from"))


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


def print_table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> None:
    """Plain columns: values are shown as they are (no markup, no emoji codes)."""
    table = Table(*(header or ()), box=None, pad_edge=False, show_header=header is not None)
    for row in rows:
        table.add_row(*(Text(cell, overflow="fold") for cell in row))
    Console(emoji=False, highlight=False).print(table)


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
@reports_errors
def token(rotate: bool, **flags: Any) -> None:
    """Print the access token that lets devices other than this one talk."""
    from voicekiosk.web.access import load_token

    settings = build_settings(flags)
    click.echo(load_token(settings.data_dir, rotate=rotate))
    if rotate:
        click.echo(
            "A running voicekiosk server takes the new token within a few seconds and shows its new QR code; "
            "devices let in with the old one must scan it.",
            err=True,
        )
