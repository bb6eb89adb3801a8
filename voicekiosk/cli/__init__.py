"""The ``voicekiosk`` command: flags and environment in, a Settings out, errors as exit codes.

Exit codes: 0 clean stop, 1 cannot start (the message says the fix), 2 bad usage or configuration.
Each area's commands live in a module of this package; importing them registers them.
"""

from __future__ import annotations

import click

from voicekiosk import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="voicekiosk")
def cli() -> None:
    """Put a talking OpenAI Realtime agent on any screen: phone, laptop or kiosk."""


from voicekiosk.cli import certs, ledger, run, service, tools  # noqa: E402  (each registers its commands on ``cli``)

__all__ = ["certs", "cli", "ledger", "run", "service", "tools"]
