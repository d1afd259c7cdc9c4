"""The period a report covers: a day, a month or a custom range of days, in a time zone.

A day is a calendar day in the period's zone (`zoneinfo`), so its bounds are that zone's local
midnights turned into UTC: a day on which the clocks change lasts 23 or 25 hours. A period is
half-open, ``start <= t < end``, and its days are listed in order with their own bounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kassa.errors import InvalidRequest

__all__ = ["Day", "InvalidPeriod", "Period", "parse_period", "zone_of"]

_MAX_DAYS = 3_700
"""About ten years: a longer range is refused rather than listed day by day."""


class InvalidPeriod(InvalidRequest):
    code = "invalid_period"
    title = "Invalid report period"


@dataclass(frozen=True, slots=True)
class Day:
    """One calendar day of a period: its date in the zone and its UTC bounds."""

    day: date
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Period:
    """``first`` to ``last`` (calendar dates, both included) in ``zone``."""

    first: date
    last: date
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise InvalidPeriod(f"the period ends ({self.last}) before it starts ({self.first})")
        if (self.last - self.first).days >= _MAX_DAYS:
            raise InvalidPeriod(f"a period is at most {_MAX_DAYS} days long")

    @classmethod
    def of_day(cls, day: date, zone: ZoneInfo) -> Period:
        return cls(day, day, zone)

    @classmethod
    def of_month(cls, year: int, month: int, zone: ZoneInfo) -> Period:
        first = date(year, month, 1)
        following = date(year + month // 12, month % 12 + 1, 1)
        return cls(first, following - timedelta(days=1), zone)

    @property
    def start(self) -> datetime:
        return midnight(self.first, self.zone)

    @property
    def end(self) -> datetime:
        return midnight(self.last + timedelta(days=1), self.zone)

    @property
    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        if (
            self.first.day == 1
            and (self.last + timedelta(days=1)).day == 1
            and (self.first.month == self.last.month)
        ):
            return self.first.strftime("%Y-%m")
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    def days(self) -> list[Day]:
        out: list[Day] = []
        current = self.first
        while current <= self.last:
            following = current + timedelta(days=1)
            out.append(Day(current, midnight(current, self.zone), midnight(following, self.zone)))
            current = following
        return out

    def describe(self) -> dict[str, str]:
        return {
            "label": self.label,
            "time_zone": self.zone.key,
            "start": iso(self.start),
            "end": iso(self.end),
        }


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``, in UTC (a day starting in a gap starts at the
    first existing local time, as ``zoneinfo`` resolves it)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the microsecond when there is one."""
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidPeriod(f"unknown time zone {name!r}") from None


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_period(text: str, zone_name: str = "UTC") -> Period:
    """``2026-11-20`` (a day), ``2026-11`` (a month) or ``2026-11-01..2026-11-15`` (both days
    included), in the zone ``zone_name``."""
    zone = zone_of(zone_name)
    text = text.strip()
    try:
        if ".." in text:
            first, _, last = text.partition("..")
            return Period(date.fromisoformat(first), date.fromisoformat(last), zone)
        month = _MONTH.match(text)
        if month:
            return Period.of_month(int(month.group(1)), int(month.group(2)), zone)
        return Period.of_day(date.fromisoformat(text), zone)
    except ValueError as error:
        raise InvalidPeriod(
            f"period {text!r} is not a day (2026-11-20), a month (2026-11) or a range "
            f"(2026-11-01..2026-11-15): {error}"
        ) from None
