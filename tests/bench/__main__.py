"""``make bench``: measure voicekiosk on this machine and print the figures beside their goals.

Run it where loopback is the only network (``make bench`` does so as root): the page figures
drive a real Chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.audio import make_mic_wav
from tests.bench.broker import ENGINES, bench_broker, bench_startup
from tests.bench.knowledge import bench_lookup
from tests.bench.page import bench_page
from tests.bench.tools import bench_tool_round_trip
from tests.browser import ARTIFACTS

Row = tuple[str, str, str, bool | None]


# (engine, request, as the table names it): what the broker figures cover.
BROKER = (("realtime", "mint", "mint"), ("realtime", "call", "Realtime call"), ("live", "call", "Live call"))
LABELS = {"realtime": "Realtime", "live": "Live"}


def rows(figures: dict[str, Any]) -> list[Row]:
    out: list[Row] = []
    for engine, name, what in BROKER:
        b = figures["broker"]["https"][engine][name]
        out += [
            (f"{what}s per second (100 concurrent, https)", f"{b['per_second']:.0f}", ">= 300", b["per_second"] >= 300),
            (f"{what}: latency added p50 (https)", f"{b['added_p50_ms']:.2f} ms", "<= 2 ms", b["added_p50_ms"] <= 2),
            (f"{what}: latency added p99 (https)", f"{b['added_p99_ms']:.2f} ms", "", None),
            (
                f"{what}: upstream connections / 100",
                f"{b['connections_per_100']:.2f}",
                "<= 2",
                b["connections_per_100"] <= 2,
            ),
        ]
        plain = figures["broker"]["http"][engine][name]  # --no-tls, beside it for comparison: no goal
        out += [
            (f"{what}s per second (100 concurrent, plain http)", f"{plain['per_second']:.0f}", "", None),
            (f"{what}: latency added p50 (plain http)", f"{plain['added_p50_ms']:.2f} ms", "", None),
        ]
    s = figures["startup"]
    out += [
        ("cold start -> /healthz 200 (http)", f"{s['cold_start_s']:.2f} s", "<= 1 s", s["cold_start_s"] <= 1),
        ("cold start -> /healthz 200 (https)", f"{s['cold_start_tls_s']:.2f} s", "", None),
        ("idle RSS", f"{s['idle_rss_mb']:.0f} MB", "<= 60 MB", s["idle_rss_mb"] <= 60),
    ]
    k = figures["lookup"]
    n = k["documents"]
    out += [
        (f"lookup over {n:,} documents: first index", f"{k['index_s']:.2f} s", "", None),
        (f"lookup over {n:,} documents: reopen, nothing changed", f"{k['reopen_s'] * 1000:.1f} ms", "", None),
        (
            f"lookup over {n:,} documents p50 (with the change check)",
            f"{k['p50_ms']:.2f} ms",
            "<= 10 ms",
            k["p50_ms"] <= 10,
        ),
        (f"lookup over {n:,} documents p99", f"{k['p99_ms']:.2f} ms", "", None),
    ]
    t, q = figures["tools"]["shown"], figures["tools"]["quiet"]
    trip = "tool round trip (sideband call -> output)"
    out += [
        (f"{trip}: added p50", f"{t['added_p50_ms']:.2f} ms", "<= 5 ms", t["added_p50_ms"] <= 5),
        (f"{trip}: added p99", f"{t['added_p99_ms']:.2f} ms", "", None),
        (f"{trip}: added p50 / p99 (-q)", f"{q['added_p50_ms']:.2f} / {q['added_p99_ms']:.2f} ms", "", None),
        (
            f"{trip}: the fake's share (a bare sideband) p50 / p99",
            f"{t['bare_p50_ms']:.2f} / {t['bare_p99_ms']:.2f} ms",
            "",
            None,
        ),
        (
            f"{trip} p50 / p99, {t['calls']} calls",
            f"{t['p50_ms']:.2f} / {t['p99_ms']:.2f} ms; webhook alone {t['tool_p50_ms']:.2f} / {t['tool_p99_ms']:.2f}",
            "",
            None,
        ),
    ]
    if "page" in figures:
        out += page_rows(figures["page"])
    return out


def against_baseline(figure: dict[str, float], engine: str, unit: str, digits: int) -> tuple[str, float]:
    """``"ours vs baseline unit = ratio"`` (Live's also against Realtime), and that ratio."""
    ours, baseline = figure[engine], figure["baseline"]
    text = f"{ours:.{digits}f} vs {baseline:.{digits}f} {unit} = {ours / baseline:.2f}x"
    if engine == "live":
        text += f"; {ours / figure['realtime']:.2f}x Realtime"
    return text, ours / baseline


def page_rows(p: dict[str, Any]) -> list[Row]:
    """Each engine's page beside the baseline (which speaks Realtime only), under the same goals."""
    out: list[Row] = []
    for delay, goal in (("0ms", 0.8), ("150ms", 0.55)):
        for engine, label in LABELS.items():
            text, ratio = against_baseline(p[f"connected_{delay}"], engine, "ms", 0)
            out.append((f"page load -> connected, upstream +{delay} ({label})", text, f"<= {goal}x", ratio <= goal))
        listening, started = p[f"listening_{delay}"], p[f"session_started_{delay}"]["live"]
        shown = f"Realtime {listening['realtime']:.0f} ms; Live {listening['live']:.0f}, session.started {started:.0f}"
        out.append((f"page load -> listening, upstream +{delay}", shown, "", None))
    for engine, label in LABELS.items():
        text, ratio = against_baseline(p["cpu_s_per_s"], engine, "s/s", 4)
        out.append((f"main-thread CPU while the agent talks ({label})", text, "<= 0.5x", ratio <= 0.5))
    attract = p["attract_cpu_s_per_s"]
    out.append(
        ("main-thread CPU, attract screen waiting (no call)", f"{attract:.4f} s/s", "<= 0.02 s/s", attract <= 0.02)
    )
    out += greeting_rows(p["greeting"])
    barge = p["barge_in_ms"]
    out.append(("barge-in: speech_started -> agent quiet (Realtime)", f"{barge:.0f} ms", "<= 300 ms", barge <= 300))
    return out


def greeting_rows(g: dict[str, dict[str, float]]) -> list[Row]:
    """Tap -> connected, and tap -> the greeting's first audio (tests/bench/greeting.py says how)."""
    out: list[Row] = []
    for engine, label in LABELS.items():
        e = g[engine]
        out.append((f"tap -> connected ({label})", f"{e['connected']:.0f} ms", "", None))
        shown = f"{e['first_word']:.0f} ms (connected + {e['gap']:.0f}; channel open at {e['channel']:.0f})"
        out.append((f"tap -> first word of the agent, greeted ({label})", shown, "<= connected + 300", e["gap"] <= 300))
    return out


async def main(skip_page: bool, runs: int, greeting_only: bool = False) -> dict[str, Any]:
    figures: dict[str, Any] = {"machine": platform.platform(), "when": time.strftime("%Y-%m-%d %H:%M")}
    if greeting_only:
        figures["page"] = await bench_page(make_mic_wav(), runs=runs, only_greeting=True)
        return figures
    figures["broker"] = {}
    for mode, tls in (("https", True), ("http", False)):
        figures["broker"][mode] = {engine: await bench_broker(engine=engine, tls=tls) for engine in ENGINES}
    figures["startup"] = await bench_startup()
    figures["lookup"] = await bench_lookup()
    # As deployed (the terminal shows each tool call), and with -q beside it.
    figures["tools"] = {"shown": await bench_tool_round_trip(), "quiet": await bench_tool_round_trip(quiet=True)}
    if not skip_page:
        figures["page"] = await bench_page(make_mic_wav(), runs=runs)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="voicekiosk benchmarks")
    parser.add_argument("--no-page", action="store_true", help="skip the browser figures")
    parser.add_argument("--runs", type=int, default=15, help="page connect runs per page and upstream latency")
    parser.add_argument("--greeting-only", action="store_true", help="only tap -> first word of the agent")
    options = parser.parse_args()
    figures = asyncio.run(main(options.no_page, options.runs, options.greeting_only))
    table = Table("figure", "measured", "goal", "", title=f"voicekiosk bench ({figures['when']})")
    measured = greeting_rows(figures["page"]["greeting"]) if options.greeting_only else rows(figures)
    for name, value, goal, ok in measured:
        table.add_row(name, value, goal, "" if ok is None else ("[green]ok[/]" if ok else "[red]MISSED[/]"))
    Console().print(table)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench.json").write_text(json.dumps(figures, indent=2))
