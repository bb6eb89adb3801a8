"""The wheel carries the page: templates/ and static/ live outside the package in the repo."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT


@pytest.mark.slow
def test_the_wheel_ships_templates_static_and_the_voice_clips(tmp_path: Path):
    # No build isolation: hatchling comes from the dev extra, so this works offline.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("voicekiosk-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in ("templates", "static"):
        for path in (ROOT / folder).iterdir():
            assert f"voicekiosk/{folder}/{path.name}" in names
    assert {"voicekiosk/fake/clips/welcome.wav", "voicekiosk/cli.py"} <= names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "voicekiosk = voicekiosk.cli:cli" in zipfile.ZipFile(wheel).read(entry_points).decode()
