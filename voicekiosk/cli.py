"""The ``voicekiosk`` command: flags and environment in, a Settings out, errors as exit codes.

Exit codes: 0 clean stop, 1 cannot start (the message says the fix), 2 bad usage or configuration.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from voicekiosk import __version__
from voicekiosk.errors import ConfigError, VoicekioskError
from voicekiosk.settings import OPTIONS, Settings, load_settings


class ConfigProblem(click.ClickException):
    """A bad option value: one line, exit code 2."""

    exit_code = 2


def settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one click option per setting that has a flag, plus --config and -v/-q."""
    for option in reversed(OPTIONS):
        if option.flag is None:
            continue
        help_text = f"{option.help} [env: {option.env}]"
        if option.is_flag:
            name = option.flag.removeprefix("--")
            decorator = click.option(f"--{name}/--no-{name}", option.name, default=None, help=help_text)
        else:
            decorator = click.option(option.flag, option.name, default=None, multiple=option.multiple, help=help_text)
        command = decorator(command)
    command = click.option("-q", "--quiet", count=True, help="Less output (repeatable).")(command)
    command = click.option("-v", "--verbose", count=True, help="More output (repeatable).")(command)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="TOML file with options (default: ./voicekiosk.toml if present). [env: VOICEKIOSK_CONFIG]",
    )(command)


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


@cli.command("config")
@settings_options
@reports_errors
def show_config(**flags: Any) -> None:
    """Print the effective configuration and where each value came from."""
    settings = build_settings(flags)
    table = Table("option", "value", "from", box=None, pad_edge=False)
    for name, value, source in settings.describe():
        table.add_row(name, value if len(value) < 70 else value[:67] + "...", source)
    Console().print(table)
