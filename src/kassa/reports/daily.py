"""The daily report: yesterday's activity, written by the worker into the data directory as
``reports/activity-YYYY-MM-DD.csv`` and ``.html`` (days in ``[reports] time_zone``), and
announced with the operator event ``report.ready`` (`kassa.events.outbox`) for the webhooks.

It is idempotent: each file is written to a temporary name of its own and renamed into place
(a reader never sees half a file; two workers writing the same day write the same rows), a
day whose two files exist is not written again, and the event is recorded once per day — its
subject is ``report:activity:<day>``, and a subject that already has an event is not given a
second one. A crash between the files and the event leaves the
files; the next check records the event.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from kassa.clock import Clock
from kassa.db import Database
from kassa.events.outbox import record
from kassa.events.tables import event
from kassa.reports.activity import activity
from kassa.reports.csvout import write_csv
from kassa.reports.html import render_report
from kassa.reports.period import Period, iso

__all__ = ["DailyReport", "report_dir", "write_daily_activity", "yesterday"]

log = logging.getLogger(__name__)

EVENT_TYPE = "report.ready"
SUBJECT_KIND = "report"


@dataclass(frozen=True, slots=True)
class DailyReport:
    day: date
    csv_path: Path
    html_path: Path
    written: bool
    """False when both files were there already."""
    event_recorded: bool


def report_dir(data_dir: Path) -> Path:
    return data_dir / "reports"


def yesterday(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date() - timedelta(days=1)


def write_daily_activity(
    database: Database,
    clock: Clock,
    data_dir: Path,
    zone: ZoneInfo,
    *,
    day: date | None = None,
) -> DailyReport:
    """Write the activity report of ``day`` (default: yesterday in ``zone``) unless it exists,
    and record its ``report.ready`` event unless it was recorded."""
    with database.transaction() as conn:
        now = clock.now(conn)
    chosen = day or yesterday(now, zone)
    period = Period.of_day(chosen, zone)
    folder = report_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / f"activity-{chosen.isoformat()}.csv"
    html_path = folder / f"activity-{chosen.isoformat()}.html"
    written = False
    if not (csv_path.exists() and html_path.exists()):
        with database.transaction() as conn:
            rows = _write_csv(conn, period, csv_path)
            _write_text(html_path, render_report(conn, period, now=now))
        written = True
        log.info("daily activity report %s written (%d rows)", chosen, rows)
    with database.transaction() as conn:
        recorded = _announce(conn, chosen, period, csv_path, html_path, clock.now(conn))
    return DailyReport(chosen, csv_path, html_path, written, recorded)


def _temporary(path: Path) -> Path:
    """A name of its own next to ``path``: two workers writing the same day never share one."""
    return path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")


def _write_csv(conn: Connection, period: Period, path: Path) -> int:
    temporary = _temporary(path)
    with temporary.open("w", encoding="utf-8", newline="") as out:
        rows = write_csv(activity(conn, period), out)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
    return rows


def _write_text(path: Path, text: str) -> None:
    temporary = _temporary(path)
    with temporary.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


def _announce(
    conn: Connection, day: date, period: Period, csv_path: Path, html_path: Path, now: datetime
) -> bool:
    subject = f"activity:{day.isoformat()}"
    seen = conn.execute(
        select(event.c.id)
        .where(event.c.subject_kind == SUBJECT_KIND, event.c.subject_id == subject)
        .limit(1)
    ).first()
    if seen is not None:
        return False
    record(
        conn,
        type=EVENT_TYPE,
        subject_kind=SUBJECT_KIND,
        subject_id=subject,
        data={
            "report": "activity",
            "day": day.isoformat(),
            "time_zone": period.zone.key,
            "start": iso(period.start),
            "end": iso(period.end),
            "csv": csv_path.name,
            "html": html_path.name,
        },
        at=now,
    )
    return True
