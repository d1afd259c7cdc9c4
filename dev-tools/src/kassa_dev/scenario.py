"""The scenario clock of the devnet: the database clock plus an offset an operator can move.

Refund windows are measured in days, so a demo or a manual test needs "15 days later" without
waiting. `ScenarioClock` is `DatabaseClock` shifted by ``clock_offset.offset_seconds`` (one
row, `kassa.db.clock_offset`), which only ever grows; `kassa up` uses it on the devnet, and
``POST /v1/admin/clock`` moves it there. It is a `kassa.clock.MovableClock`: the product knows
only that protocol. Production runs the plain database clock, and the endpoint answers 404.
Chain block times are real, so the watcher adds the same offset to a block's time to get the
payment time it locks the rate at (`kassa.clock.offset_of`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kassa.clock import DatabaseClock
from kassa.db.clock_offset import clock_offset

__all__ = ["ScenarioClock", "advance", "offset"]


def offset(conn: Connection) -> timedelta:
    seconds = conn.execute(
        select(clock_offset.c.offset_seconds).where(clock_offset.c.id == 1)
    ).scalar_one_or_none()
    return timedelta(seconds=int(seconds or 0))


def advance(conn: Connection, seconds: int) -> timedelta:
    """Move the scenario clock forward by `seconds` (never backwards); return the new offset."""
    if type(seconds) is not int or seconds <= 0:
        raise ValueError("the scenario clock only moves forward, by a positive number of seconds")
    insert_ = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(insert_(clock_offset).values(id=1, offset_seconds=0).on_conflict_do_nothing())
    conn.execute(
        update(clock_offset)
        .where(clock_offset.c.id == 1)
        .values(offset_seconds=clock_offset.c.offset_seconds + seconds)
    )
    return offset(conn)


class ScenarioClock:
    """`DatabaseClock` plus the stored offset (a `kassa.clock.MovableClock`)."""

    server_side = False

    def __init__(self) -> None:
        self._db = DatabaseClock()

    def now(self, conn: Connection) -> datetime:
        return self._db.now(conn) + offset(conn)

    def offset(self, conn: Connection) -> timedelta:
        return offset(conn)

    def advance(self, conn: Connection, seconds: int) -> timedelta:
        return advance(conn, seconds)
