"""Business days (review SLAs) and calendar months (windows after a state change)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from kassa.policy import add_business_days, add_months, is_business_day

# March 2026: Mon 2, Fri 6, Sat 7, Sun 8, Mon 9.
MONDAY = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
FRIDAY = datetime(2026, 3, 6, 9, 30, tzinfo=UTC)
SATURDAY = datetime(2026, 3, 7, 9, 30, tzinfo=UTC)


def test_weekdays_are_business_days_and_weekends_are_not() -> None:
    assert is_business_day(date(2026, 3, 6))
    assert not is_business_day(date(2026, 3, 7))
    assert not is_business_day(date(2026, 3, 8))


def test_a_holiday_is_not_a_business_day() -> None:
    assert not is_business_day(date(2026, 3, 9), {date(2026, 3, 9)})


def test_within_one_week() -> None:
    assert add_business_days(MONDAY, 4) == datetime(2026, 3, 6, 9, 30, tzinfo=UTC)


def test_friday_plus_one_is_monday() -> None:
    assert add_business_days(FRIDAY, 1) == datetime(2026, 3, 9, 9, 30, tzinfo=UTC)


def test_five_business_days_cross_one_weekend() -> None:
    # Fri 6 → Mon 9, Tue 10, Wed 11, Thu 12, Fri 13.
    assert add_business_days(FRIDAY, 5) == datetime(2026, 3, 13, 9, 30, tzinfo=UTC)


def test_a_request_on_saturday_starts_counting_on_monday() -> None:
    assert add_business_days(SATURDAY, 1) == datetime(2026, 3, 9, 9, 30, tzinfo=UTC)


def test_zero_business_days_is_now() -> None:
    assert add_business_days(SATURDAY, 0) == SATURDAY


def test_holidays_are_skipped_like_weekends() -> None:
    # Thu 24 Dec 2026 + 2 business days with 25 and 28 Dec off: Fri 25 (holiday), Sat, Sun,
    # Mon 28 (holiday), Tue 29 (1), Wed 30 (2).
    holidays = {date(2026, 12, 25), date(2026, 12, 28)}
    start = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)
    assert add_business_days(start, 2, holidays) == datetime(2026, 12, 30, 12, 0, tzinfo=UTC)


def test_business_days_are_utc_dates() -> None:
    """23:30 on Friday in UTC-05:00 is already Saturday in UTC: counting starts from Saturday."""
    late_friday_new_york = datetime(2026, 3, 6, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert add_business_days(late_friday_new_york, 1) == datetime(2026, 3, 9, 4, 30, tzinfo=UTC)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_days(datetime(2026, 3, 2), 1)


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        add_business_days(MONDAY, -1)


def test_a_holiday_list_without_business_days_is_an_error() -> None:
    every_day = {date(2026, 1, 1) + timedelta(days=n) for n in range(366 * 11)}
    with pytest.raises(ValueError, match="no business days"):
        add_business_days(datetime(2026, 1, 1, tzinfo=UTC), 1, every_day)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), 6, datetime(2026, 7, 31, tzinfo=UTC)),
        (datetime(2026, 8, 31, tzinfo=UTC), 6, datetime(2027, 2, 28, tzinfo=UTC)),
        (datetime(2027, 8, 31, tzinfo=UTC), 6, datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 10, 15, 8, 0, tzinfo=UTC), 3, datetime(2027, 1, 15, 8, 0, tzinfo=UTC)),
        (datetime(2026, 12, 1, tzinfo=UTC), 12, datetime(2027, 12, 1, tzinfo=UTC)),
    ],
)
def test_add_months_clamps_to_the_end_of_a_shorter_month(
    start: datetime, months: int, expected: datetime
) -> None:
    assert add_months(start, months) == expected
