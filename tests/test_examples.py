"""The museum example (``examples/museum/``) is one config file a venue could use as it is: the agent
answers from its folder, can call staff, and shows the map. Real files, the real tool runner."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from voicekiosk.errors import ConfigError
from voicekiosk.settings import load_settings
from voicekiosk.tools.toolbox import open_toolbox

MUSEUM = Path(__file__).resolve().parent.parent / "examples" / "museum" / "voicekiosk.toml"


class Screen:
    """A call's page as a tool sees it: what it was told."""

    call_id = "rtc_example"

    def __init__(self) -> None:
        self.told: list[Mapping[str, Any]] = []

    def tell_page(self, event: Mapping[str, Any]) -> bool:
        self.told.append(event)
        return True

    def end(self) -> bool:
        return True


async def test_the_museum_example_answers_calls_staff_and_shows_the_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("STAFF_TOKEN", "pager-secret")
    settings = load_settings({"data_dir": str(tmp_path)}, env={}, config_path=MUSEUM)
    assert settings.runs_tools
    assert settings.brand is not None and settings.brand.title == "City Museum"
    assert settings.brand.logo is not None and settings.brand.logo.content_type == "image/svg+xml"
    # A walk-up kiosk: greeted, in four languages, open as its knowledge folder says.
    assert settings.greeting and settings.languages == ("en", "fr", "de", "es") and settings.dim_after == 15
    assert settings.hours is not None and [len(day) for day in settings.hours.week] == [0, 1, 1, 1, 1, 1, 1]
    toolbox = open_toolbox(settings.tools, settings.data_dir)
    runner = toolbox.runner()
    assert runner is not None
    try:
        await toolbox.start()
        assert sorted(runner.tools) == ["call_staff", "end_conversation", "lookup", "show"]
        assert "pager-secret" not in json.dumps(runner.declarations())  # the model never sees it
        found = await runner.call("lookup", json.dumps({"query": "open on Thursday evening"}))
        assert found.ok and "21:00" in found.output and "visiting.md" in found.output
        screen = Screen()
        shown = await runner.call("show", json.dumps({"image": "map.png", "title": "Room 204"}), screen)
        assert shown.ok, shown.output
        [event] = screen.told
        assert event["type"] == "show" and event["image"].startswith("data:image/png;base64,")
    finally:
        await toolbox.aclose()


def test_the_museum_example_without_its_secret_stops_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STAFF_TOKEN", raising=False)
    with pytest.raises(ConfigError) as stopped:
        load_settings({"data_dir": str(tmp_path)}, env={}, config_path=MUSEUM)
    assert str(stopped.value) == "[[tools]] call_staff: headers.Authorization: $STAFF_TOKEN is not set"
