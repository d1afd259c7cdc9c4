"""Shifted and movable clocks: the product's protocols, and the devnet's scenario clock as one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kassa.clock import DatabaseClock, ManualClock, MovableClock, ShiftedClock, offset_of
from kassa.db import Database
from kassa_dev.scenario import ScenarioClock


def test_only_the_scenario_clock_is_shifted_and_movable() -> None:
    assert isinstance(ScenarioClock(), MovableClock)
    assert isinstance(ScenarioClock(), ShiftedClock)
    # A manual clock has an advance() of its own (by a timedelta, no database): not movable.
    for clock in (DatabaseClock(), ManualClock(datetime(2030, 1, 1, tzinfo=UTC))):
        assert not isinstance(clock, ShiftedClock)
        assert not isinstance(clock, MovableClock)


def test_offset_of_follows_the_scenario_clock(db: Database) -> None:
    scenario = ScenarioClock()
    with db.transaction() as conn:
        assert offset_of(DatabaseClock(), conn) == timedelta(0)
        assert offset_of(scenario, conn) == timedelta(0)
        assert scenario.advance(conn, 3600) == timedelta(hours=1)
        assert scenario.advance(conn, 60) == timedelta(hours=1, minutes=1)
        assert offset_of(scenario, conn) == timedelta(hours=1, minutes=1)
        assert offset_of(DatabaseClock(), conn) == timedelta(0)
        real = DatabaseClock().now(conn)  # read first: SQLite's now moves within a transaction
        shifted = scenario.now(conn) - real
        assert timedelta(hours=1, minutes=1) <= shifted < timedelta(hours=1, minutes=2)
        for bad in (0, -5):
            with pytest.raises(ValueError, match="only moves forward"):
                scenario.advance(conn, bad)
