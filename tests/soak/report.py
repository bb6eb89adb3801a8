"""What the soak's figures say: growth over time, and a verdict against each goal. Plain functions
of the figures, so that a made-up run can test them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FLAT = 0.10  # the goal: RSS, open fds and the page's heap end within 10 % of where they started
FD_SLACK = 2  # fds are few (~20): one socket more or less is not a leak
SPAN_S = 60.0  # a server life shorter than this (after its warm-up) gets no verdict on growth
CAUSE_S = 10.0  # a fall this soon after an event is its doing (a restart takes seconds to stop)

Row = tuple[str, str, str, bool | None]  # (figure, measured, goal, met: None when it has no goal)


@dataclass(frozen=True)
class Sample:
    t: float  # seconds from the start
    life: int  # which run of the server process (1, then 2 after the restart)
    rss_mb: float
    fds: int
    heap_mb: float | None  # the page's JS heap in use, after a collection


def growth(values: list[float], slack: float = 0.0) -> dict[str, Any]:
    """First, last and max of a series, and whether the last is within ``FLAT`` (or ``slack``,
    in the series' unit, if larger) of the first."""
    first, last = values[0], values[-1]
    allowed = max(FLAT * first, slack)
    return {
        "first": first,
        "last": last,
        "max": max(values),
        "growth": (last - first) / first if first else 0.0,
        "flat": abs(last - first) <= allowed,
    }


def lives(samples: list[Sample], warm_up: float) -> dict[int, dict[str, Any]]:
    """Each server life's RSS and fds after its first ``warm_up`` seconds; ``flat`` is None where
    too little of it was sampled to tell."""
    out: dict[int, dict[str, Any]] = {}
    for life in sorted({s.life for s in samples}):
        mine = [s for s in samples if s.life == life]
        kept = [s for s in mine if s.t >= mine[0].t + warm_up]
        if len(kept) < 3 or kept[-1].t - kept[0].t < SPAN_S:
            out[life] = {"samples": len(kept), "span_s": kept[-1].t - kept[0].t if kept else 0.0, "flat": None}
            continue
        rss, fds = growth([s.rss_mb for s in kept]), growth([float(s.fds) for s in kept], FD_SLACK)
        span = kept[-1].t - kept[0].t
        out[life] = {
            "samples": len(kept),
            "span_s": span,
            "rss_mb": rss,
            "fds": fds,
            "flat": rss["flat"] and fds["flat"],
        }
    return out


def heap(samples: list[Sample], since: float) -> dict[str, Any] | None:
    """The page's heap (the page is never reloaded) from ``since`` (seconds from the start) on:
    once every kind of event has struck once, for a page's first pass through a path (its
    compiled code, its caches) grows the heap once, and only what grows after that is a leak.
    ``whole_run_first``: the first sample of all, for the record."""
    kept = [s.heap_mb for s in samples if s.heap_mb is not None and s.t >= since]
    if len(kept) < 3:
        return None
    return {**growth(kept), "since_s": since, "whole_run_first": next(s.heap_mb for s in samples if s.heap_mb)}


def unexplained(downs: list[dict[str, Any]], applied: list[dict[str, Any]], until: float) -> list[dict[str, Any]]:
    """The page's falls (``{"t": s from the start, "problem": ...}``) before ``until`` that no
    applied event (``{"at": s, ...}``) explains: none struck from 1 s before to ``CAUSE_S`` after."""
    return [
        down
        for down in downs
        if down["t"] < until and not any(e["at"] - 1.0 <= down["t"] <= e["at"] + CAUSE_S for e in applied)
    ]


def rows(figures: dict[str, Any]) -> list[Row]:
    """The table: each figure, what was measured, its goal and whether it was met."""
    r = figures["reconnects"]
    out: list[Row] = [
        ("disruptions applied (drops, expiry, refusal, restart)", _kinds(r["applied"]), "", None),
        ("reconnects: expected vs seen", f"{r['expected']} vs {r['seen']}", "each seen", r["seen"] >= r["expected"]),
        ("disruptions recovered from", f"{r['recovered']} of {r['expected']}", "all", r["recovered"] == r["expected"]),
        ("time to recover, median / max", f"{r['median_s']:.1f} / {r['max_s']:.1f} s", "", None),
        # A fall nothing explains is how the soak found pages' 5th claims refused (orphaned at 20 s).
        ("falls the soak did not cause", _falls(r["unexplained"]), "none", not r["unexplained"]),
    ]
    for life, figure in figures["server"].items():
        if figure["flat"] is None:
            out.append(
                (
                    f"server life {life}: RSS, fds",
                    f"{figure['samples']} samples over {figure['span_s']:.0f} s",
                    "too short to judge",
                    None,
                )
            )
            continue
        for name, unit in (("rss_mb", "MB"), ("fds", "")):
            g = figure[name]
            shown = f"{g['first']:.0f} -> {g['last']:.0f} {unit} (max {g['max']:.0f}, {g['growth']:+.0%})"
            out.append(
                (f"server life {life}: {'RSS' if name == 'rss_mb' else 'open fds'}", shown, "within 10%", g["flat"])
            )
    if (h := figures["page_heap"]) is None:
        out.append(("page JS heap after GC", "too few samples after the one-off events", "too short to judge", None))
    else:
        shown = f"{h['first']:.2f} -> {h['last']:.2f} MB (max {h['max']:.2f}, {h['growth']:+.0%})"
        out.append((f"page JS heap after GC, from {h['since_s']:.0f} s", shown, "within 10%", h["flat"]))
        out.append(("page JS heap after GC, first sample of the run", f"{h['whole_run_first']:.2f} MB", "", None))
    b = figures["busy"]
    out.append(("second page, --max-calls 1: told busy", "yes" if b["told_busy"] else "no", "yes", b["told_busy"]))
    got_in = b["in_after_s"]
    out.append(
        (
            "second page: in after the first hung up",
            "never" if got_in is None else f"{got_in:.1f} s",
            "yes",
            got_in is not None,
        )
    )
    orphans = figures["orphaned"]
    out.append(("calls hung up as no page held them (server log)", str(orphans), "0", orphans == 0))
    left = figures["calls_left_open"]
    out.append(("calls left open upstream at the end", str(left), "0", left == 0))
    rec = figures["call_record"]
    if rec["rows"] is None:
        out.append(("rows in the call record", "no call record", "one per call", False))
    else:
        out.append(
            (
                "rows in the call record",
                f"{rec['rows']} for {rec['calls']} calls",
                "one per call",
                rec["rows"] == rec["calls"],
            )
        )
    errors = figures["page_errors"]
    out.append(("uncaught errors on the pages", str(len(errors)), "0", not errors))
    problems = figures["server_log_problems"]
    out.append(("server log: tracebacks, unclosed resources", str(len(problems)), "0", not problems))
    return out


def missed(table: list[Row]) -> list[str]:
    """The figures whose goal was not met."""
    return [name for name, _, _, ok in table if ok is False]


def _falls(downs: list[dict[str, Any]]) -> str:
    """``"1: 200 s (The call dropped.)"``; ``"none"``."""
    if not downs:
        return "none"
    return f"{len(downs)}: " + ", ".join(f"{d['t']:.0f} s ({d['problem'] or d['state']})" for d in downs[:5])


def _kinds(applied: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for event in applied:
        counts[event["kind"]] = counts.get(event["kind"], 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "none"
