"""The README's systemd unit keeps the API key out of the unit file, and what it sets really works."""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import REAL_KEY, ROOT
from voicekiosk.settings import load_settings


def unit() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = [b for b in re.findall(r"```ini\n(.*?)```", readme, re.S) if "[Service]" in b]
    return block


def test_no_key_in_the_unit_file():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "Environment=OPENAI_API_KEY" not in readme
    assert "LoadCredential=openai:" in unit()
    assert "sk-" not in unit()


def test_the_units_key_file_variable_is_read(tmp_path: Path):
    [assignment] = re.findall(r"^Environment=(VOICEKIOSK_API_KEY_FILE)=%d/openai$", unit(), re.M)
    credentials = tmp_path / "credentials"  # what systemd's %d expands to
    credentials.mkdir()
    (credentials / "openai").write_text(REAL_KEY + "\n")
    settings = load_settings({}, env={assignment: str(credentials / "openai")})
    assert settings.api_key == REAL_KEY
    assert settings.sources["api_key"] == f"file {credentials / 'openai'}"
