"""Calendar arithmetic for policies: business days (review SLAs) and calendar months.

Design
------
* A business day is a Monday-to-Friday UTC date that is not in the policy's holiday list.
  Kassa has no notion of the operator's time zone yet, so "the day" is the UTC date; an operator
  in UTC+3 sees a deadline up to three hours earlier than a local reading would give.
* ``add_business_days(start, n)`` moves forward one calendar day at a time and counts only
  business days, keeping the time of day: Friday 10:00 + 1 = Monday 10:00, and a request made
  on Saturday + 1 = Monday (the weekend does not count). ``n = 0`` returns ``start``.
* ``add_months`` clamps the day to the end of a shorter month (31 August + 6 months = 28 or
  29 February), which is how "within six months" is usually read.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta

__all__ = ["add_business_days", "add_months", "is_business_day"]

_SATURDAY = 5
_MAX_STEPS = 366 * 10  # a holiday list cannot make the loop run forever


def is_business_day(day: date, holidays: Collection[date] = ()) -> bool:
    """Monday to Friday and not a holiday."""
    return day.weekday() < _SATURDAY and day not in holidays


def add_business_days(start: datetime, days: int, holidays: Collection[date] = ()) -> datetime:
    """``start`` moved forward by ``days`` business days (UTC dates), time of day kept, in UTC."""
    _check_aware(start)
    if type(days) is not int or days < 0:
        raise ValueError(f"business days must be a non-negative int, got {days!r}")
    moment = start.astimezone(UTC)
    counted = 0
    for _ in range(_MAX_STEPS):
        if counted == days:
            return moment
        moment += timedelta(days=1)
        if is_business_day(moment.date(), holidays):
            counted += 1
    raise ValueError("the holiday list leaves no business days to count")


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus ``months`` calendar months, the day clamped to the month's end."""
    if type(months) is not int or months < 0:
        raise ValueError(f"months must be a non-negative int, got {months!r}")
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return moment.replace(year=year, month=month, day=min(moment.day, _month_days(year, month)))


def _month_days(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _check_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware (UTC)")
