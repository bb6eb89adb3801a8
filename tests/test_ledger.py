"""The call record without a network: prices and token costs, the SQLite file (its mode, schema,
migrations, a corrupt one, two connections), and the book over a restart (a real file in tmp_path)."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from voicekiosk.errors import ConfigError
from voicekiosk.fake.wire import transcription_usage, usage
from voicekiosk.ledger.book import CallBook
from voicekiosk.ledger.prices import PRICES, parse_prices, price_of
from voicekiosk.ledger.store import FILE, MIGRATIONS, Store, StoreError
from voicekiosk.ledger.tokens import Tokens
from voicekiosk.settings import Settings
from voicekiosk.upstream.live import LiveEngine
from voicekiosk.upstream.record import MAX_RESPONSES, CallRecord


def test_a_response_s_tokens_are_split_by_kind_cached_input_apart_and_priced_per_million() -> None:
    spent = usage(heard_s=2.0, words=10, spoken_s=3.0, turn=1)  # the fake's GA usage, as OpenAI's
    tokens = Tokens()
    tokens.add(spent)
    assert tokens.input == spent["input_tokens"] and tokens.output == spent["output_tokens"]
    assert (tokens.text_in, tokens.text_cached, tokens.audio_in) == (160 - 64, 64, 20)
    assert (tokens.text_out, tokens.audio_out) == (13, 60)
    expected = (96 * 4.00 + 64 * 0.40 + 20 * 32.00 + 13 * 24.00 + 60 * 64.00) / 1e6
    assert tokens.cost(PRICES["gpt-realtime-2.1"]) == pytest.approx(expected)
    heard = Tokens()
    heard.add(transcription_usage(2.0, "two words"))
    assert (heard.audio_in, heard.text_out, heard.output) == (20, 2, 2)
    assert heard.cost(PRICES["gpt-4o-mini-transcribe"]) == pytest.approx((20 * 3.00 + 2 * 5.00) / 1e6)


def test_an_unknown_model_or_an_unsplit_count_costs_unknown_never_a_guess() -> None:
    tokens = Tokens()
    tokens.add({"input_tokens": 100, "output_tokens": 50})  # no details: which kind is unknown
    assert tokens.total == 150 and tokens.cost(PRICES["gpt-realtime-2.1"]) is None
    assert Tokens().cost(None) == 0.0  # nothing used costs nothing, priced or not
    assert price_of("my-azure-deployment") is None
    image = Tokens(image_in=10)
    assert image.cost(PRICES["gpt-realtime-1.5"]) is None  # no image price for that model
    for bad in ({"input_tokens": -5}, {"input_tokens": True}, {"input_tokens": 1e30}, {"input_tokens": "9"}):
        assert Tokens().add(bad).total == 0
    assert all(price.dated and price.source.startswith("https://") for price in PRICES.values())


def test_prices_can_be_overridden_in_the_config_file_and_bad_ones_are_one_line(tmp_path: Path) -> None:
    config = tmp_path / "voicekiosk.toml"
    config.write_text('[prices."gpt-realtime-2.1"]\ntext_in = 3.5\n[prices."my-deployment"]\nper_minute = 0.04\n')
    from voicekiosk.settings import load_settings

    settings = load_settings({}, env={}, config_path=config)
    assert settings.prices["gpt-realtime-2.1"].text_in == 3.5
    assert settings.prices["gpt-realtime-2.1"].audio_out == 64.00  # the rest from the table
    assert price_of("my-deployment", settings.prices).per_minute == 0.04
    assert any(row[0] == "prices.my-deployment" and "per_minute 0.04" in row[1] for row in settings.describe())
    for table, message in (
        ({"m": {"text_in": -1}}, "prices.'m'.text_in: -1 is not a price in USD"),
        ({"m": {"txt_in": 1}}, "prices.'m': unknown key 'txt_in'"),
        ({"m": {"text_in": "cheap"}}, "prices.'m'.text_in: 'cheap' is not a price"),
        ({"m": 3}, "prices.'m' must be a table"),
        ([], "prices must be tables"),
    ):
        with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")) as caught:
            parse_prices(table, config)
        assert "\n" not in str(caught.value)


def test_the_file_is_private_versioned_and_migrated_once(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    assert store is not None
    assert os.stat(tmp_path / FILE).st_mode & 0o777 == 0o600
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    again = Store.open(tmp_path)  # nothing to migrate a second time
    assert again is not None and again.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    again.close()
    assert Store.open(tmp_path / "nowhere", create=False) is None


def test_a_corrupt_or_newer_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / FILE).write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match=r"unreadable .*move it aside"):
        Store.open(tmp_path)
    newer = tmp_path / "newer"
    newer.mkdir()
    db = sqlite3.connect(newer / FILE)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this voicekiosk"):
        Store.open(newer)


def record(call_id: str, *, seconds: float = 30.0, usage_of: dict | None = None) -> CallRecord:
    call = CallRecord(call_id, "192.0.2.9", started=time.monotonic() - seconds)
    if usage_of is not None:
        call.tokens.add(usage_of)
        call.counted_here = True
    return call


def test_a_call_is_a_row_from_its_start_and_a_restart_keeps_today_s_spend(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, budget_per_day=1.0)
    book = CallBook(Store.open(tmp_path), settings)  # type: ignore[arg-type]
    spent = usage(heard_s=4.0, words=20, spoken_s=6.0, turn=2)
    call = record("rtc_one", usage_of=spent)
    book.call_started(call)
    [row] = book.store.query("SELECT * FROM calls")
    assert row["ended"] is None and row["reason"] is None and row["model"] == "gpt-realtime-2.1"
    running = record("rtc_two", usage_of=usage(2.0, 5, 2.0, 0))  # still running when the server dies
    book.call_started(running)
    book.call_ended(call, "idle")
    [row] = book.store.query("SELECT * FROM calls WHERE call_id = 'rtc_one'")
    cost = call.tokens.cost(PRICES["gpt-realtime-2.1"])
    assert row["reason"] == "idle" and row["usage_by"] == "server" and row["cost"] == pytest.approx(cost)
    assert row["audio_out"] == call.tokens.audio_out and row["text_cached"] == call.tokens.text_cached
    assert row["ended"] - row["started"] == pytest.approx(30.0, abs=1)
    today = book.today()
    running_cost = running.tokens.cost(PRICES["gpt-realtime-2.1"])
    assert (today.calls, today.cost, today.budget, today.spent) == (2, pytest.approx(cost + running_cost), 1.0, False)
    book.flush()  # what the server does every FLUSH_EVERY s
    flushed = time.time()
    book.call_started(record("rtc_new", seconds=0))  # never flushed: its row as written at its start
    book.close()

    # The next start: the calls left running were ended by the crash, when their rows were last
    # written; today's spend is still there.
    book = CallBook(Store.open(tmp_path), settings)  # type: ignore[arg-type]
    [crashed] = book.store.query("SELECT * FROM calls WHERE call_id = 'rtc_two'")
    assert crashed["reason"] == "crash" and crashed["ended"] == pytest.approx(flushed, abs=1)
    assert crashed["cost"] == pytest.approx(running_cost)  # as last written while it ran
    [new] = book.store.query("SELECT * FROM calls WHERE call_id = 'rtc_new'")
    assert (new["reason"], new["ended"], new["cost"]) == ("crash", new["started"], 0.0)  # priced: not unknown
    today = book.today()
    assert (today.calls, today.cost) == (3, pytest.approx(cost + running_cost))
    book.close()


def test_a_per_minute_call_costs_its_billed_minutes_and_an_unpriced_model_unknown(tmp_path: Path) -> None:
    live = Settings(data_dir=tmp_path, engine="live", model="gpt-live-1.1")
    book = CallBook(Store.open(tmp_path), live)  # type: ignore[arg-type]
    call = record("live_one", seconds=100.0)
    call.billed_seconds = call.final_seconds = 120.0
    assert book.cost(call) == pytest.approx(2 * 0.05)  # OpenAI's final count
    assert book.cost(record("live_two", seconds=5.0)) == pytest.approx(15 / 60 * 0.05)  # the start charge
    book.close()
    azure = CallBook(Store.open(tmp_path), Settings(data_dir=tmp_path, model="my-deployment"))  # type: ignore[arg-type]
    assert azure.cost(record("rtc_x", usage_of=usage(1.0, 2, 1.0, 0))) is None
    azure.close()


def test_the_venue_s_day_is_the_hours_timezone_s(tmp_path: Path) -> None:
    from voicekiosk.hours import parse_hours

    settings = Settings(data_dir=tmp_path, hours=parse_hours({"mon": "09:00-17:00", "timezone": "Pacific/Auckland"}))
    at = 1_764_547_200.0  # 2025-12-01 00:00 UTC: already the afternoon of the 1st in Auckland
    book = CallBook(Store.open(tmp_path), settings, clock=lambda: datetime.fromtimestamp(at - 3600, UTC))  # type: ignore[arg-type]
    assert book.day() == "2025-12-01"  # 23:00 UTC on the 30th
    book.close()


def test_a_row_is_written_in_well_under_a_millisecond_on_the_loop(tmp_path: Path) -> None:
    """Measured, so the writes may stay on the event loop (no thread)."""
    book = CallBook(Store.open(tmp_path), Settings(data_dir=tmp_path))  # type: ignore[arg-type]
    calls = [record(f"rtc_{n}", usage_of=usage(1.0, 3, 1.0, 1)) for n in range(200)]
    began = time.perf_counter()
    for call in calls:
        book.call_started(call)
        book.call_ended(call, "page")
    per_call_ms = (time.perf_counter() - began) / len(calls) * 1000
    book.close()
    assert per_call_ms < 5, per_call_ms  # two writes a call; typically ~0.1 ms
    print(f"call record: {per_call_ms:.3f} ms per call (start + end)")


def test_transcripts_are_kept_only_for_running_calls_and_go_after_their_days(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    settings = Settings(data_dir=tmp_path, keep_transcripts=True, transcript_days=30)
    book = CallBook(Store.open(tmp_path), settings, clock=lambda: datetime.fromtimestamp(now[0], UTC))  # type: ignore[arg-type]
    call = record("rtc_said")
    book.call_started(call)
    book.transcript("rtc_said", "user", "Hello there.")
    book.transcript("rtc_unknown", "user", "Not a call of ours.")
    assert [tuple(r) for r in book.store.query("SELECT call_id, role, text FROM transcripts")] == [
        ("rtc_said", "user", "Hello there.")
    ]
    book.close()
    now[0] += 31 * 86400  # a month on: the next start (or the next day) prunes it
    book = CallBook(Store.open(tmp_path), settings, clock=lambda: datetime.fromtimestamp(now[0], UTC))  # type: ignore[arg-type]
    assert book.store.query("SELECT * FROM transcripts") == []
    book.close()


def test_voicekiosk_config_shows_the_budget_and_the_longest_call() -> None:
    rows = {name: value for name, value, _ in Settings().describe()}
    assert rows["budget_per_day"] == "none (no limit)" and rows["max_call_minutes"] == "15.0"
    rows = {name: value for name, value, _ in Settings(budget_per_day=5.0, max_call_minutes=3).describe()}
    assert (rows["budget_per_day"], rows["max_call_minutes"]) == ("5.0", "3")


def test_a_budget_with_a_model_that_has_no_price_is_warned_of(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from voicekiosk.ledger.book import open_book

    open_book(Settings(data_dir=tmp_path / "data", budget_per_day=1.0, transcription_model="whisper-9")).close()
    assert "whisper-9 has no price" in caplog.text and "not held to the budget" in caplog.text
    assert "gpt-realtime-2.1 has no price" not in caplog.text


def test_each_response_counts_once_openai_s_count_over_a_page_s_and_the_memory_of_them_is_bounded() -> None:
    one, two = Tokens(), Tokens()
    one.add(usage(2.0, 10, 3.0, 1))
    two.add(usage(1.0, 4, 1.0, 2))
    call = record("rtc_r")
    assert call.count_response("resp_1", one, by_page=True)  # the page's report came first
    assert call.usage_by == "page" and call.page_tokens == one
    call.count_openai(usage(2.0, 10, 3.0, 1), "model", response="resp_1")  # then the sideband's: it replaces it
    assert call.tokens == one and call.page_tokens == Tokens() and call.usage_by == "server"
    assert not call.count_response("resp_1", one, by_page=True)  # a report after the server's: not again
    assert call.count_response("resp_2", two, by_page=True)  # one the sideband missed: the page's
    both = Tokens()
    both.merge(one)
    both.merge(two)
    assert (call.tokens, call.page_tokens, call.usage_by) == (both, two, "server+page")
    for n in range(2 * MAX_RESPONSES):
        call.count_response(f"resp_{n:03}", Tokens(), by_page=True)
    assert len(call.responses) == MAX_RESPONSES


async def test_a_per_minute_call_s_cost_is_openai_s_final_count_else_at_least_its_age_at_one_price(
    tmp_path: Path,
) -> None:
    """Without ``session.closed`` (a REST hang-up, a dropped sideband) the last snapshot may be a
    minute short: the call's age bounds it. The terminal's line and the row price it alike, at the
    config's price."""
    prices = parse_prices({"gpt-live-1.1": {"per_minute": 0.10}}, tmp_path / "voicekiosk.toml")
    live = Settings(data_dir=tmp_path, engine="live", model="gpt-live-1.1", prices=prices)
    book = CallBook(Store.open(tmp_path), live)  # type: ignore[arg-type]
    engine = LiveEngine(live)
    call = record("live_one", seconds=100.0)
    call.count_openai({"seconds": 60.0}, "model")  # session.usage.updated, a while ago
    assert book.cost(call) == pytest.approx(100 / 60 * 0.10)
    assert engine.minutes(call).cost == pytest.approx(book.cost(call)) and engine.minutes(call).estimated
    call.count_openai({"seconds": 97.0}, "model", final=True)  # session.closed
    assert book.cost(call) == pytest.approx(97 / 60 * 0.10) == engine.minutes(call).cost
    assert not engine.minutes(call).estimated
    await engine.aclose()
    book.close()


def test_a_transcription_billed_by_duration_is_unknown_unless_priced_per_minute(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, transcription_model="whisper-1")
    call = record("rtc_whisper")
    assert call.count_openai({"type": "duration", "seconds": 30.0}, "transcription") is None
    assert (call.heard_seconds, call.billed_seconds, call.counted_here) == (30.0, None, True)
    book = CallBook(Store.open(tmp_path), settings)  # type: ignore[arg-type]
    assert book.cost(call) is None  # not $0
    book.close()
    prices = parse_prices({"whisper-1": {"per_minute": 0.006}}, tmp_path / "voicekiosk.toml")
    book = CallBook(Store.open(tmp_path), dataclasses.replace(settings, prices=prices))  # type: ignore[arg-type]
    assert book.cost(call) == pytest.approx(0.5 * 0.006)
    book.call_started(call)
    book.call_ended(call, "page")
    [row] = book.store.query("SELECT heard_seconds, cost FROM calls")
    assert tuple(row) == (30.0, pytest.approx(0.5 * 0.006))
    book.close()


def first_schema(data_dir: Path) -> None:
    """A call record as the first schema wrote it, with a call left running."""
    db = sqlite3.connect(data_dir / FILE)
    db.executescript(f"{MIGRATIONS[0]}; PRAGMA user_version = 1;")
    db.execute(
        "INSERT INTO calls (call_id, started, day, client, engine, model) VALUES"
        " ('rtc_old', 1.0, '2026-11-30', '192.0.2.1', 'realtime', 'gpt-realtime-2.1')"
    )
    db.commit()
    db.close()


def test_a_file_of_the_first_schema_is_migrated_and_a_crash_ends_a_call_when_last_written(tmp_path: Path) -> None:
    first_schema(tmp_path)
    store = Store.open(tmp_path)
    assert store is not None and store.version == len(MIGRATIONS) == 2
    assert store.mark_crashed() == 1
    [row] = store.query("SELECT reason, ended, updated, heard_seconds FROM calls")
    assert tuple(row) == ("crash", None, None, 0.0)  # never written since: when it ended is not known
    store.close()
