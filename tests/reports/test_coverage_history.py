"""The solvency chart's "held" line comes from the reconciliation runs: each day shows the last
complete run before its end, and a day before any has no figure (a gap, not a zero)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from kassa.db import Database
from kassa.reports.period import Period
from kassa.reports.reconciliation.history import held_by_day
from kassa.reports.reconciliation.tables import reconciliation_run


def _run(db: Database, at: datetime, held: int, *, complete: bool = True) -> None:
    notes = [] if complete else ["solvency: not every chain was read, so coverage counts …"]
    summary = {"solvency": {"assets_usd_micro": str(held)}, "notes": notes}
    with db.transaction() as conn:
        conn.execute(
            reconciliation_run.insert().values(
                id=uuid.uuid4(),
                started_at=at,
                finished_at=at,
                trigger="test",
                new_breaks=0,
                persisting_breaks=0,
                resolved_breaks=0,
                summary=json.dumps(summary),
            )
        )


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_each_day_shows_the_last_complete_run_before_its_end(db: Database) -> None:
    _run(db, datetime(2026, 11, 2, 1, 0, tzinfo=UTC), 70_000_000)
    _run(db, datetime(2026, 11, 2, 3, 0, tzinfo=UTC), 90_000_000)  # the day's last run
    _run(db, datetime(2026, 11, 3, 12, 0, tzinfo=UTC), 1, complete=False)  # a chain unread
    _run(db, datetime(2026, 11, 4, 23, 30, tzinfo=UTC), 50_000_000)  # Berlin: 5 November
    period = Period(
        datetime(2026, 11, 1).date(), datetime(2026, 11, 5).date(), ZoneInfo("Europe/Berlin")
    )
    with db.transaction() as conn:
        figures = held_by_day(conn, period)
    assert [None if f is None else f.usd for f in figures] == [
        None,
        90_000_000,
        90_000_000,
        90_000_000,
        50_000_000,
    ]
