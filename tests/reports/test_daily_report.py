"""The worker's daily report: yesterday's activity (days in the configured zone) as CSV and
HTML in <data_dir>/reports, written once, announced once with the operator event
report.ready."""

from __future__ import annotations

import csv
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.events.tables import event
from kassa.reports.daily import write_daily_activity
from kassa.reports.settings import ReportSettings
from kassa.worker import daily_reports_forever

if TYPE_CHECKING:
    from conftest import History  # type: ignore[import-not-found]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_daily_activity_files_and_event(finance_history: History, tmp_path: Path) -> None:
    db = finance_history.db
    # 05:00Z on the 13th is 06:00 in Berlin: yesterday there is 12 November.
    clock = ManualClock(datetime(2026, 11, 13, 5, 0, tzinfo=UTC))
    berlin = ZoneInfo("Europe/Berlin")
    first = write_daily_activity(db, clock, tmp_path, berlin)
    assert (first.day.isoformat(), first.written, first.event_recorded) == (
        "2026-11-12",
        True,
        True,
    )
    assert first.csv_path == tmp_path / "reports" / "activity-2026-11-12.csv"
    with first.csv_path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["day", "category", "item", "asset", "count", "amount", "usd"],
        ["2026-11-12", "activation", "expired", "USD", "1", "2.00", "2.00"],
        ["2026-11-12", "activation", "fulfilled", "USD", "1", "1.50", "1.50"],
    ]
    assert "<canvas" in first.html_path.read_text()
    assert not list((tmp_path / "reports").glob("*.part"))

    again = write_daily_activity(db, clock, tmp_path, berlin)
    assert (again.written, again.event_recorded) == (False, False)
    with db.transaction() as conn:
        events = conn.execute(select(event).where(event.c.type == "report.ready")).all()
    assert len(events) == 1
    assert (events[0].subject_kind, events[0].subject_id) == (
        "report",
        "activity:2026-11-12",
    )
    assert json.loads(events[0].data)["csv"] == "activity-2026-11-12.csv"

    # The worker's loop writes the next day once the clock has moved on.
    clock.advance(datetime(2026, 11, 14, 5, 0, tzinfo=UTC) - clock.now())
    settings = Settings(
        data_dir=tmp_path, reports=ReportSettings(time_zone="Europe/Berlin", daily_check_seconds=1)
    )
    stop = threading.Event()
    loop = threading.Thread(target=daily_reports_forever, args=(db, clock, settings, stop))
    loop.start()
    target = tmp_path / "reports" / "activity-2026-11-13.html"
    try:
        for _ in range(200):
            if target.exists():
                break
            stop.wait(0.05)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert target.exists()
