"""What every ``voicekiosk`` command shares: settings from flags, errors as exit codes, tables."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

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


def print_table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> None:
    """Plain columns: values are shown as they are (no markup, no emoji codes)."""
    table = Table(*(header or ()), box=None, pad_edge=False, show_header=header is not None)
    for row in rows:
        table.add_row(*(Text(cell, overflow="fold") for cell in row))
    Console(emoji=False, highlight=False).print(table)
