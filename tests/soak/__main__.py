"""``make soak`` (``python -m tests.soak [--minutes 10]``): run the soak, print its figures beside
their goals, write them to ``tests/artifacts/soak.json``, and exit 1 if a goal was missed.

Run it where loopback is the only network (``make soak`` does so as root): it drives a real Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time

from rich.console import Console
from rich.table import Table

from tests.audio import make_mic_wav
from tests.browser import ARTIFACTS
from tests.soak.plan import schedule
from tests.soak.report import missed, rows
from tests.soak.run import soak


def main() -> int:
    parser = argparse.ArgumentParser(description="voicekiosk soak: one kiosk page through faults for minutes")
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="how long the faults go on (default 10; 2 at least)"
    )
    options = parser.parse_args()
    try:
        schedule(options.minutes)
    except ValueError as exc:
        parser.error(str(exc))
    when = time.strftime("%Y-%m-%d %H:%M")
    figures = {"machine": platform.platform(), "when": when, **asyncio.run(soak(options.minutes, make_mic_wav()))}
    table = Table("figure", "measured", "goal", "", title=f"voicekiosk soak, {options.minutes:g} minutes ({when})")
    measured = rows(figures)
    for name, value, goal, ok in measured:
        table.add_row(name, value, goal, "" if ok is None else ("[green]ok[/]" if ok else "[red]MISSED[/]"))
    Console(width=120).print(table)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "soak.json").write_text(json.dumps(figures, indent=2))
    if failed := missed(measured):
        print(f"soak: {len(failed)} goal(s) missed: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # asyncio.run has cancelled the soak: its processes and browser are gone
        sys.exit(130)
