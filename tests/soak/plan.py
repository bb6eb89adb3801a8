"""What the soak does to the page, and when: a plain function of its length, so it can be tested."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

EventKind = Literal["drop", "expire", "refuse", "restart"]

DROP_EVERY = 20.0  # seconds between the fake's drops of the call
REFUSE_FOR = 30.0  # seconds the fake refuses mints and calls, once
# The events that happen once, at these fractions of the run. The restart comes early, so that the
# server's second life (its RSS and fds) spans most of the run and every other fault; all are over
# by 70 %, so that the page's heap is judged on the rest, once every path it has has run once.
ONCE: dict[EventKind, float] = {"restart": 0.15, "refuse": 0.35, "expire": 0.7}
CLEARANCE = DROP_EVERY / 2  # no drop this close to a one-off event (or inside a refusal window)


@dataclass(frozen=True)
class Event:
    at: float  # seconds from the start, at the earliest (the soak waits for the page to be back first)
    kind: EventKind

    def busy_until(self) -> float:
        """When the page should be settled again after this event, as the plan reckons it."""
        return self.at + (REFUSE_FOR if self.kind == "refuse" else 0.0) + CLEARANCE


def schedule(minutes: float) -> list[Event]:
    """The events of a soak of ``minutes``, in order: a drop every ``DROP_EVERY`` s, and the one-off
    events at their fractions of the run, no drop within ``CLEARANCE`` of one (nor in a refusal).

    Raises:
      ValueError: ``minutes`` is too short to hold every one-off event apart.
    """
    total = minutes * 60
    once = [Event(round(total * fraction, 1), kind) for kind, fraction in ONCE.items()]
    if any(b.at - a.busy_until() < 0 for a, b in itertools.pairwise(once)) or once[0].at < DROP_EVERY / 2:
        raise ValueError(f"a soak of {minutes} minutes is too short to hold its events apart (2 at least)")
    drops = []
    for i in range(1, int(total // DROP_EVERY) + 1):
        at = i * DROP_EVERY
        clear = all(at < e.at - CLEARANCE or at >= e.busy_until() for e in once)
        if clear and at < total:
            drops.append(Event(at, "drop"))
    return sorted(once + drops, key=lambda e: e.at)
