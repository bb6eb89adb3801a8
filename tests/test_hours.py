"""Opening hours: the schedule (``voicekiosk.hours``), its config errors, ``voicekiosk config``, and
the server refusing every new session (and every wake) while closed, by its own clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from tests.helpers import post_call
from voicekiosk.cli import cli
from voicekiosk.errors import ConfigError
from voicekiosk.hours import Hours, parse_hours
from voicekiosk.settings import load_settings

PARIS = ZoneInfo("Europe/Paris")
WEEK = {"mon-fri": "09:00-17:00", "sat": "10:00-12:00, 13:00-14:00", "timezone": "Europe/Paris"}


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def test_a_week_reads_as_people_write_it_and_says_when_it_next_changes() -> None:
    hours = parse_hours(WEEK)
    assert str(hours) == "Mon-Fri 9:00-17:00, Sat 10:00-12:00 & 13:00-14:00"
    monday_night = paris(2026, 11, 30, 23, 0)
    assert not hours.is_open(monday_night)
    assert hours.next_change(monday_night) == paris(2026, 12, 1, 9, 0)
    assert hours.is_open(paris(2026, 12, 1, 9, 0)) and not hours.is_open(paris(2026, 12, 1, 17, 0))
    saturday_lunch = paris(2026, 12, 5, 12, 30)
    assert hours.state(saturday_lunch) == {
        "open": False,
        "week": [[["09:00", "17:00"]]] * 5 + [[["10:00", "12:00"], ["13:00", "14:00"]], []],
        "timezone": "Europe/Paris",
        "next": {"at": "2026-12-05T13:00:00+01:00", "in_ms": 1_800_000, "day": 5, "time": "13:00", "days_ahead": 0},
    }
    # Saturday after two: closed until Monday, two days on; asked from another zone, the same instant.
    after = hours.state(paris(2026, 12, 5, 14, 0).astimezone(ZoneInfo("America/New_York")))
    assert after["next"] is not None
    assert (after["open"], after["next"]["at"], after["next"]["days_ahead"]) == (False, "2026-12-07T09:00:00+01:00", 2)


def test_a_night_across_midnight_a_daylight_saving_change_and_always_open() -> None:
    night = parse_hours({"fri": "18:00-24:00", "sat": "00:00-02:00", "timezone": "Europe/Paris"})
    assert night.next_change(paris(2026, 12, 4, 19, 0)) == paris(2026, 12, 5, 2, 0)  # midnight is no change
    # Paris goes from +01:00 to +02:00 on 2026-03-29: "09:00" on Monday is then 07:00 UTC.
    spring = parse_hours({"mon": "09:00-17:00", "timezone": "Europe/Paris"})
    opens = spring.next_change(paris(2026, 3, 28, 12, 0))
    assert opens is not None and opens.astimezone(UTC) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    always = parse_hours("mon-sun=00:00-24:00")
    assert always.is_open() and always.next_change() is None and always.state()["next"] is None
    local = parse_hours({"mon-sun": "00:00-24:00"})
    assert local.timezone is None and local.is_open()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"mon": "9-5"}, "mon: '9-5' is not HH:MM-HH:MM"),
        ({"monday": "09:00-17:00"}, "'monday' is not a day"),
        ({"fri-mon": "09:00-17:00"}, "'fri-mon': the run of days goes backwards"),
        ({"mon": "17:00-09:00"}, "ends before it starts (a night: split it at 24:00"),
        ({"mon": "09:00-12:00, 11:00-13:00"}, "mon: its times overlap"),
        ({"mon": "09:00-24:30"}, "not on a clock"),
        ({"mon": 9}, 'mon: expected text such as "09:00-17:00"'),
        ({"mon-tue": "09:00-12:00", "tue": "13:00-17:00"}, "tue is given twice"),
        ({"mon": "09:00-12:00", "timezone": "Europe/Atlantis"}, "'Europe/Atlantis' is not a time zone"),
        ({"timezone": "UTC"}, "no day is given"),
        (["mon"], "expected a table"),
    ],
)
def test_bad_hours_are_one_line_errors(raw: object, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_hours(raw)
    assert message in str(error.value)


def test_config_shows_the_hours_and_serve_refuses_bad_ones(tmp_path: Path) -> None:
    config = tmp_path / "vk.toml"
    config.write_text('[hours]\nmon-fri = "09:00-17:00"\nsat = "10:00-14:00"\ntimezone = "Europe/Paris"\n')
    result = CliRunner().invoke(cli, ["config", "--config", str(config)], env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 0, result.output
    rows = [line.split(None, 3) for line in result.output.splitlines() if line.startswith("hours")]
    assert [row[:3] for row in rows] == [
        ["hours", "Mon-Fri", "9:00-17:00"],
        ["hours", "Sat", "10:00-14:00"],
        ["hours", "timezone", "Europe/Paris"],
    ]
    config.write_text('hours = { mon = "09:00-17:00", tue = "nine to five" }\n')
    for command in ("config", "serve"):
        result = CliRunner().invoke(cli, [command, "--config", str(config)], env={"OPENAI_API_KEY": ""})
        assert result.exit_code == 2
        assert result.output.strip() == f"Error: hours: tue: 'nine to five' is not HH:MM-HH:MM (from file {config})"
    with pytest.raises(ConfigError, match=r"^hours: 'x' is not day=HH:MM-HH:MM \(from env VOICEKIOSK_HOURS\)$"):
        load_settings({}, env={"VOICEKIOSK_HOURS": "x"})
    assert load_settings({}, env={}).hours is None  # absent: always open


def clock_at(when: datetime):
    """A clock that reads ``when`` now and goes on ticking from there."""
    offset = when - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


CLOSED_NIGHT = clock_at(paris(2026, 11, 30, 23, 0))  # Monday night: opens Tuesday 9:00
HOURS = parse_hours(WEEK)


async def test_closed_the_server_refuses_every_new_session_and_every_wake(make_client, fake) -> None:
    client = await make_client(hours=HOURS, clock=CLOSED_NIGHT)
    response = await post_call(client)
    assert response.status == 403
    error = (await response.json())["error"]
    assert error["code"] == "closed" and error["opens"] == "2026-12-01T09:00:00+01:00"
    assert "Mon-Fri 9:00-17:00" in error["message"]
    assert fake.recorded("calls") == []  # nothing upstream: nothing billed
    for trigger, body in (("start", None), ("announce", {"text": "Hello"})):
        response = await client.post(f"/api/{trigger}", json=body)
        assert response.status == 403 and (await response.json())["error"]["code"] == "closed"
    response = await client.post("/api/stop")  # stopping is never refused for the hours (no page here)
    assert response.status == 409
    hours = await (await client.get("/api/hours")).json()
    assert hours["open"] is False and hours["next"]["time"] == "09:00" and hours["next"]["days_ahead"] == 1
    assert 0 < hours["next"]["in_ms"] <= 10 * 3600 * 1000
    config = await (await client.get("/api/config")).json()
    assert config["hours"]["open"] is False and config["hours_url"] == "/api/hours"

    browser = await make_client(hours=HOURS, clock=CLOSED_NIGHT, sdp="browser")
    response = await browser.post("/api/token")
    assert response.status == 403 and (await response.json())["error"]["code"] == "closed"
    assert fake.recorded("client_secrets") == []


async def test_open_or_without_hours_calls_go_through(make_client) -> None:
    tuesday_noon = clock_at(paris(2026, 12, 1, 12, 0))
    client = await make_client(hours=HOURS, clock=tuesday_noon)
    assert (await post_call(client)).status == 201
    hours = await (await client.get("/api/hours")).json()
    assert hours["open"] is True and hours["next"]["time"] == "17:00"
    always = await make_client()
    assert (await post_call(always)).status == 201
    assert await (await always.get("/api/hours")).json() is None
    assert (await (await always.get("/api/config")).json())["hours"] is None


def test_hours_are_settings_like_any_other() -> None:
    settings = load_settings({}, env={"VOICEKIOSK_HOURS": "sat-sun=10:00-18:00; timezone=UTC"})
    assert settings.hours == Hours(((),) * 5 + (((600, 1080),),) * 2, "UTC")
    assert settings.sources["hours"] == "env VOICEKIOSK_HOURS"
    assert timedelta(0) < settings.hours.state()["next"]["in_ms"] * timedelta(milliseconds=1) <= timedelta(days=7)
