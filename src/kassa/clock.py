"""Clocks. Money code never reads the process's wall clock directly.

`DatabaseClock` asks the database inside the current unit of work, so every process sharing a
PostgreSQL server agrees on "now" (and on SQLite there is one process anyway). `ManualClock` is
for tests: it only moves when told to.

A clock may also run ahead of real time by a stored offset (`ShiftedClock`), and an operator may
move it forward (`MovableClock`): the devnet's scenario clock (`kassa_dev.scenario.ScenarioClock`)
is both. The product only knows these protocols: the watcher adds `offset_of(clock, conn)` to a
block's (real) time to get the payment time, and ``POST /v1/admin/clock`` exists only when the
running clock is a `MovableClock`.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection

from kassa.db import driver
from kassa.errors import InvalidRequest

_NOW_SQL = {
    "postgresql": "SELECT now()",
    # Text, read back by `kassa.db.driver.read_time` (naive UTC).
    "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",
}


class Clock(Protocol):
    @property
    def server_side(self) -> bool:
        """True when the database itself is the clock (stored functions may call now())."""
        ...

    def now(self, conn: Connection) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


@runtime_checkable
class ShiftedClock(Clock, Protocol):
    """A clock that runs ahead of real (database) time by an offset it keeps."""

    def offset(self, conn: Connection) -> timedelta:
        """How far this clock is ahead of real time now (never negative)."""
        ...


@runtime_checkable
class MovableClock(ShiftedClock, Protocol):
    """A shifted clock an operator may move forward (``POST /v1/admin/clock``)."""

    def advance(self, conn: Connection, seconds: int) -> timedelta:
        """Move forward by `seconds` (a positive int; never backwards); return the new offset."""
        ...


def offset_of(clock: Clock, conn: Connection) -> timedelta:
    """How far `clock` runs ahead of real time: its offset if it is a `ShiftedClock`, else zero."""
    return clock.offset(conn) if isinstance(clock, ShiftedClock) else timedelta(0)


class DatabaseClock:
    server_side = True

    def now(self, conn: Connection) -> datetime:
        # Straight to the driver: every unit of work of the API reads it once.
        ((value,),) = driver.rows(conn, _NOW_SQL[conn.dialect.name], {})
        return driver.read_time(value)


class ManualClock:
    """A clock that moves only when told. Thread-safe."""

    server_side = False

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)
        self._lock = threading.Lock()

    def now(self, conn: Connection | None = None) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("a manual clock never moves backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        when = as_utc(when)
        with self._lock:
            if when < self._now:
                raise ValueError("a manual clock never moves backwards")
            self._now = when


def as_utc(value: datetime) -> datetime:
    """Naive datetimes from the database are UTC; aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class InvalidTime(InvalidRequest):
    code = "invalid_time"
    title = "Invalid time"


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with an explicit offset (``2026-11-20T14:03:11Z``); no offset is refused,
    because a local time would silently mean different moments on different servers."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTime(f"{text!r} is not an ISO 8601 time like 2026-11-20T14:03:11Z") from None
    if moment.tzinfo is None:
        raise InvalidTime(f"{text!r} has no UTC offset; add Z or +00:00")
    return moment
