"""Opening hours: when the kiosk may start calls (the ``hours`` setting).

``hours = { mon = "09:00-17:00", sat = "10:00-12:00, 13:00-16:00", timezone = "Europe/Paris" }``:
a day not listed is closed, ``mon-fri`` names a run of days, ``"24:00"`` is the end of a day (a
night runs on into the next day's ``"00:00-..."``). Without ``timezone``, this machine's local time.
No ``hours`` at all: always open.

This server's clock is the authority: pages are told whether it is open and in how many
milliseconds that changes (``Hours.state``), never left to work it out by their own clocks.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
Span = tuple[int, int]  # minutes after midnight, [start, end)
Week = tuple[tuple[Span, ...], ...]  # seven days' spans, Monday first
_SPAN = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_LOOKAHEAD_DAYS = 8  # a weekly schedule changes within a week, or never


@dataclass(frozen=True)
class Hours:
    """A weekly schedule, in ``timezone`` (an IANA name; None: this machine's local time)."""

    week: Week
    timezone: str | None = None

    def is_open(self, now: datetime | None = None) -> bool:
        return self._open_at(self._wall(now))

    def next_change(self, now: datetime | None = None) -> datetime | None:
        """When it next opens (if closed) or closes (if open), aware; None: it never does."""
        wall = self._wall(now)
        current = self._open_at(wall)
        for boundary in self._boundaries(wall.date()):
            if boundary > wall and self._open_at(boundary) != current:
                return self._aware(boundary)
        return None

    def state(self, now: datetime | None = None) -> dict[str, Any]:
        """What a page is told: open or not, the week (``[["09:00", "17:00"]]`` a day, Monday first,
        in the schedule's own time) and the next change: when (ISO), in how many ms, and its day
        and time there (``days_ahead``: 0 today, 1 tomorrow...)."""
        now = now or datetime.now(UTC)
        change = self.next_change(now)
        upcoming = None
        if change is not None:
            wall = self._wall(change)
            upcoming = {
                "at": change.isoformat(timespec="seconds"),
                "in_ms": max(0, round((change - now).total_seconds() * 1000)),
                "day": wall.weekday(),
                "time": f"{wall:%H:%M}",
                "days_ahead": (wall.date() - self._wall(now).date()).days,
            }
        return {
            "open": self.is_open(now),
            "week": [[[_hhmm(s), _hhmm(e)] for s, e in day] for day in self.week],
            "timezone": self.timezone,
            "next": upcoming,
        }

    def groups(self) -> list[tuple[str, str]]:
        """(days, spans) as people read them: ``("Mon-Fri", "9:00-17:00")``; runs of days alike merged."""
        out: list[tuple[str, str]] = []
        day = 0
        while day < 7:
            last = day
            while last + 1 < 7 and self.week[last + 1] == self.week[day]:
                last += 1
            if self.week[day]:
                days = NAMES[day] if last == day else f"{NAMES[day]}-{NAMES[last]}"
                spans = (f"{_hhmm(s, short=True)}-{_hhmm(e, short=True)}" for s, e in self.week[day])
                out.append((days, " & ".join(spans)))
            day = last + 1
        return out

    def __str__(self) -> str:
        return ", ".join(f"{days} {spans}" for days, spans in self.groups()) or "closed every day"

    def _zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None

    def _wall(self, now: datetime | None) -> datetime:
        """``now`` as a naive wall-clock time of the schedule."""
        now = now or datetime.now(UTC)
        zone = self._zone()
        return (now.astimezone(zone) if zone else now.astimezone()).replace(tzinfo=None)

    def _aware(self, wall: datetime) -> datetime:
        zone = self._zone()
        return wall.replace(tzinfo=zone) if zone else wall.astimezone()  # naive: local, DST known

    def _open_at(self, wall: datetime) -> bool:
        minute = wall.hour * 60 + wall.minute
        return any(start <= minute < end for start, end in self.week[wall.weekday()])

    def _boundaries(self, today: date) -> list[datetime]:
        """Every start and end of a span from today on, for a week and a day, in order."""
        out = []
        for ahead in range(_LOOKAHEAD_DAYS):
            day = today + timedelta(days=ahead)
            midnight = datetime.combine(day, clock_time())
            for start, end in self.week[day.weekday()]:
                out += [midnight + timedelta(minutes=start), midnight + timedelta(minutes=end)]
        return sorted(out)


def parse_hours(raw: Any) -> Hours:
    """A TOML table (``{mon = "09:00-17:00", timezone = "..."}``), or the same as text for the
    environment: ``"mon-fri=09:00-17:00; sat=10:00-14:00; timezone=Europe/Paris"``.

    Raises:
      ValueError: the first thing wrong, in words.
    """
    table = _table(raw)
    timezone = table.pop("timezone", None)
    if timezone is not None:
        timezone = _zone_name(timezone)
    week: list[tuple[Span, ...] | None] = [None] * 7
    for key, value in table.items():
        for day in _days(key):
            if week[day] is not None:
                raise ValueError(f"{DAYS[day]} is given twice")
            week[day] = _spans(value, DAYS[day])
    if all(day is None for day in week):
        raise ValueError('no day is given (e.g. mon = "09:00-17:00"); leave hours out to be always open')
    return Hours(tuple(day or () for day in week), timezone)


def _table(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return {str(k).strip().lower(): v for k, v in raw.items()}
    if not isinstance(raw, str):
        raise ValueError('expected a table, e.g. { mon = "09:00-17:00" }')
    table: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in raw.split(";"))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"{part!r} is not day=HH:MM-HH:MM")
        table[key.strip().lower()] = value.strip()
    return table


def _zone_name(value: Any) -> str:
    name = str(value).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'timezone: {value!r} is not a time zone (e.g. "Europe/Paris")') from None
    return name


def _days(key: str) -> list[int]:
    first, _, last = key.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise ValueError(f"{key!r} is not a day (mon, tue, ..., sun, a run such as mon-fri, or timezone)")
    a, b = DAYS.index(first), DAYS.index(last or first)
    if b < a:
        raise ValueError(f"{key!r}: the run of days goes backwards")
    return list(range(a, b + 1))


def _spans(value: Any, day: str) -> tuple[Span, ...]:
    if not isinstance(value, str):
        raise ValueError(f'{day}: expected text such as "09:00-17:00"')
    text = value.strip().lower()
    if text in ("", "closed"):
        return ()
    spans = []
    for part in (p.strip() for p in text.split(",")):
        match = _SPAN.fullmatch(part)
        if not match:
            raise ValueError(f"{day}: {part!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = map(int, match.groups())
        start, end = _minutes(h1, m1, day, part), _minutes(h2, m2, day, part)
        if end <= start:
            raise ValueError(f"{day}: {part!r} ends before it starts (a night: split it at 24:00 across two days)")
        spans.append((start, end))
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        if start < end:
            raise ValueError(f"{day}: its times overlap")
    return tuple(spans)


def _minutes(hour: int, minute: int, day: str, part: str) -> int:
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        raise ValueError(f"{day}: {part!r} has a time that is not on a clock (00:00 to 24:00)")
    return hour * 60 + minute


def _hhmm(minutes: int, *, short: bool = False) -> str:
    hour, minute = divmod(minutes, 60)
    return f"{hour}:{minute:02d}" if short else f"{hour:02d}:{minute:02d}"
