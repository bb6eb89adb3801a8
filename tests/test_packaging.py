"""The wheel carries the page: templates/ and static/ live outside the package in the repo."""

from __future__ import annotations

import subprocess
import sys
import tarfile
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
    for folder in ("templates", "static"):  # every file, static/i18n/'s translation tables too
        for path in (ROOT / folder).rglob("*"):
            if path.is_file():
                assert f"voicekiosk/{folder}/{path.relative_to(ROOT / folder).as_posix()}" in names
    assert {"voicekiosk/fake/clips/welcome.wav", "voicekiosk/cli/__init__.py"} <= names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "voicekiosk = voicekiosk.cli:cli" in zipfile.ZipFile(wheel).read(entry_points).decode()
    license_file = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
    assert "Permission is hereby granted" in zipfile.ZipFile(wheel).read(license_file).decode()


@pytest.mark.slow
def test_the_sdist_carries_the_license_and_everything_the_wheel_is_built_from(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)],
        check=True,
        timeout=300,
        cwd=ROOT,
        capture_output=True,
    )
    [sdist] = tmp_path.glob("voicekiosk-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        license_text = archive.extractfile(f"{sdist.name.removesuffix('.tar.gz')}/LICENSE").read().decode()  # type: ignore[union-attr]
    assert "Permission is hereby granted" in license_text and "Copyright (c)" in license_text
    assert {
        "templates/index.html",
        "static/boot.js",
        "voicekiosk/cli/__init__.py",
        "README.md",
        "pyproject.toml",
    } <= names
