"""The soak's own pieces (``tests/soak/``), fast: its plan, its verdicts on made-up figures, and the
call record's seam on real SQLite files. The soak itself runs with ``make soak``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.soak.call_record import call_record_rows
from tests.soak.plan import CLEARANCE, DROP_EVERY, REFUSE_FOR, schedule
from tests.soak.report import Sample, growth, heap, lives, missed, rows, unexplained
from tests.soak.stack import bad_lines, orphaned
from voicekiosk.ledger.store import Store


def test_ten_minutes_drop_every_20_s_and_strike_each_one_off_once() -> None:
    plan = schedule(10)
    kinds = [e.kind for e in plan]
    assert [k for k in kinds if k != "drop"] == ["restart", "refuse", "expire"]
    assert kinds.count("drop") == 24
    assert [e.at for e in plan] == sorted(e.at for e in plan) and plan[-1].at < 600
    once = [e for e in plan if e.kind != "drop"]
    for drop in (e for e in plan if e.kind == "drop"):
        assert drop.at % DROP_EVERY == 0
        for event in once:  # never near a one-off event, nor while calls are refused
            assert drop.at <= event.at - CLEARANCE or drop.at >= event.at + CLEARANCE
            if event.kind == "refuse":
                assert not event.at < drop.at < event.at + REFUSE_FOR + CLEARANCE
    assert once[0].at < 0.2 * 600  # the restart early: the server's second life spans the rest
    assert once[-1].at <= 0.7 * 600  # the heap is judged after the last


def test_the_plan_scales_down_to_two_minutes_and_no_further() -> None:
    assert [(e.at, e.kind) for e in schedule(2)] == [(18, "restart"), (42, "refuse"), (84, "expire"), (100, "drop")]
    with pytest.raises(ValueError, match="too short"):
        schedule(1)


def test_growth_is_flat_within_10_percent_or_the_slack() -> None:
    assert growth([100, 130, 109])["flat"]  # a peak between is shown (max), not judged
    assert growth([100, 120, 109]) == {"first": 100, "last": 109, "max": 120, "growth": 0.09, "flat": True}
    assert not growth([100, 105, 111])["flat"]
    assert growth([10.0, 12.0], slack=2)["flat"] and not growth([10.0, 13.0], slack=2)["flat"]


def samples(life: int, start: float, rss: list[float], fds: list[int]) -> list[Sample]:
    return [Sample(start + 10 * i, life, r, f, 1.0 + i / 1000) for i, (r, f) in enumerate(zip(rss, fds, strict=True))]


def test_each_server_life_is_judged_after_its_warm_up_if_long_enough() -> None:
    first = samples(1, 0, [30, 50, 51, 52], [8, 12, 12, 12])  # too short once warmed up: no verdict
    leaking = samples(2, 40, [40, 50, 52, 54, 56, 58, 60, 62], [9, 12, 13, 14, 15, 16, 17, 18])
    judged = lives(first + leaking, warm_up=10)
    assert judged[1]["flat"] is None and judged[1]["samples"] == 3
    assert judged[2]["rss_mb"]["first"] == 50 and judged[2]["rss_mb"]["last"] == 62  # the warm-up's 40 left out
    assert judged[2]["flat"] is False and not judged[2]["fds"]["flat"]
    steady = samples(2, 40, [40, 50, 51, 50, 52, 51, 50, 52], [9, 12, 13, 12, 13, 14, 12, 13])
    assert lives(first + steady, warm_up=10)[2]["flat"] is True
    judged_heap = heap(first + steady, since=50)
    assert judged_heap is not None and judged_heap["first"] == 1.001 and judged_heap["whole_run_first"] == 1.0
    assert heap(first + steady, since=100) is None  # fewer than 3 samples after it


GOOD: dict[str, Any] = {
    "reconnects": {
        "applied": [{"kind": "drop"}, {"kind": "drop"}, {"kind": "restart"}],
        "expected": 3,
        "seen": 3,
        "recovered": 3,
        "median_s": 0.4,
        "max_s": 2.0,
        "unexplained": [],
    },
    "server": {"1": {"samples": 2, "span_s": 20.0, "flat": None}, "2": lives(samples(2, 0, [50] * 8, [12] * 8), 0)[2]},
    "page_heap": {**growth([1.2, 1.25, 1.21]), "since_s": 430.0, "whole_run_first": 1.1},
    "busy": {"told_busy": True, "in_after_s": 4.9},
    "calls_left_open": 0,
    "orphaned": 0,
    "call_record": {"rows": 9, "calls": 9},
    "page_errors": [],
    "server_log_problems": [],
}


def test_a_good_run_misses_nothing_and_says_so_in_its_table() -> None:
    table = rows(GOOD)
    assert missed(table) == []
    shown = {name: (value, ok) for name, value, _, ok in table}
    assert shown["disruptions applied (drops, expiry, refusal, restart)"][0] == "2 drop, 1 restart"
    assert shown["rows in the call record"] == ("9 for 9 calls", True)
    assert shown["server life 1: RSS, fds"][1] is None
    assert shown["falls the soak did not cause"] == ("none", True)
    assert missed(rows({**GOOD, "page_heap": None})) == []  # a short run: no verdict on it
    assert shown["server life 2: RSS"] == ("50 -> 50 MB (max 50, +0%)", True)


@pytest.mark.parametrize(
    ("change", "figure"),
    [
        ({"reconnects": {"seen": 2}}, "reconnects: expected vs seen"),
        ({"reconnects": {"recovered": 2}}, "disruptions recovered from"),
        ({"server": {"2": {"fds": {"flat": False}}}}, "server life 2: open fds"),
        ({"page_heap": {"flat": False}}, "page JS heap after GC, from 430 s"),
        ({"busy": {"told_busy": False}}, "second page, --max-calls 1: told busy"),
        ({"busy": {"in_after_s": None}}, "second page: in after the first hung up"),
        ({"calls_left_open": 1}, "calls left open upstream at the end"),
        ({"orphaned": 1}, "calls hung up as no page held them (server log)"),
        ({"call_record": {"rows": 8}}, "rows in the call record"),
        ({"call_record": {"rows": None}}, "rows in the call record"),
        ({"page_errors": ["uncaught: TypeError"]}, "uncaught errors on the pages"),
        ({"server_log_problems": ["Traceback (most recent call last):"]}, "server log: tracebacks, unclosed resources"),
    ],
)
def test_each_missed_goal_is_named(change: dict[str, Any], figure: str) -> None:
    figures = copy.deepcopy(GOOD)
    merge(figures, change)
    assert missed(rows(figures)) == [figure]


def merge(into: dict[str, Any], change: dict[str, Any]) -> None:
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def test_falls_long_after_every_event_are_the_ones_unexplained() -> None:
    applied = [{"at": 20.0, "kind": "drop"}, {"at": 90.0, "kind": "restart"}]
    downs = [{"t": t, "state": "reconnecting", "problem": "The call dropped."} for t in (20.4, 97.0, 200.0, 700.0)]
    assert [d["t"] for d in unexplained(downs, applied, until=600)] == [200.0]  # 700: the busy check's
    figures = copy.deepcopy(GOOD)
    figures["reconnects"]["unexplained"] = unexplained(downs, applied, until=600)
    shown = {name: (value, ok) for name, value, _, ok in rows(figures)}
    assert shown["falls the soak did not cause"] == ("1: 200 s (The call dropped.)", False)
    assert missed(rows(figures)) == ["falls the soak did not cause"]


def test_bad_server_lines_are_crashes_and_leaks_not_warnings() -> None:
    logs = [["WARNING  OpenAI refused the hang-up: HTTP 404"], ["ERROR    call failed", "Traceback (most recent"]]
    assert bad_lines(logs) == ["Traceback (most recent"]
    assert bad_lines([["Unclosed client session"]]) == ["Unclosed client session"]
    assert orphaned([["INFO     hang-up rtc_1 as no page holds it", "INFO     hang-up rtc_2 by 127.0.0.1"]]) == 1


def test_the_call_record_is_counted_as_the_server_keeps_it(tmp_path: Path) -> None:
    assert call_record_rows(tmp_path) is None
    store = Store.open(tmp_path)
    assert store is not None
    with store:
        for call in ("rtc_1", "rtc_2"):
            row = {"call_id": call, "started": 1.0, "day": "2026-12-01", "client": "127.0.0.1"}
            store.insert(row | {"engine": "realtime", "model": "m"})
        assert call_record_rows(tmp_path) == 2  # read while the server still holds it open (WAL)
