"""The worker's daily reconciliation: once a day, after the configured time, the day before is
reconciled and its report written into the data directory as ``reconciliation-YYYY-MM-DD.json``
(the summary, coverage and open breaks) and ``.csv`` (the breaks). A day whose JSON file exists
is done: restarts and several workers do not run it twice (the write is atomic, the file is the
record)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

from kassa.reports.reconciliation.run import Reconciler, write_files


def closed_day(now: datetime, at: time) -> date:
    """The latest day whose reconciliation is due at `now`: day D is due from D+1 at `at`."""
    shift = timedelta(hours=at.hour, minutes=at.minute, seconds=at.second)
    return (now - shift).date() - timedelta(days=1)


def report_path(data_dir: Path, day: date) -> Path:
    return data_dir / f"reconciliation-{day.isoformat()}.json"


def run_if_due(
    make: Callable[[], Reconciler], data_dir: Path, now: datetime, at: time
) -> tuple[Path, Path] | None:
    """Reconcile and write the due day's files unless they exist; the paths written, or None."""
    day = closed_day(now, at)
    if report_path(data_dir, day).exists():
        return None
    reconciler = make()
    try:
        outcome = reconciler.run(trigger="worker")
    finally:
        reconciler.close()
    summary = {"day": day.isoformat(), **outcome.summary}
    return write_files(data_dir, day.isoformat(), summary)
