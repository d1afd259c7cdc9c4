"""What the house held, day by day, as the reconciliation runs measured it: the coverage line
of the HTML report's solvency chart (`kassa.reports.solvency.CoverageSeries`).

Each day of the period takes the last run that finished before the day ended and read every
chain (its solvency figures are then complete); a day before any such run has no figure, and
the chart leaves a gap rather than draw a number nobody measured.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, select

from kassa.reports.period import Period
from kassa.reports.reconciliation.tables import reconciliation_run
from kassa.reports.solvency import DailyFigure


def held_by_day(conn: Connection, period: Period) -> list[DailyFigure | None]:
    """The USD value of the coins held (deposit addresses and hot wallets, at the bid) at the
    end of each day of `period`, from the reconciliation runs; None where none had run."""
    runs = conn.execute(
        select(reconciliation_run.c.finished_at, reconciliation_run.c.summary)
        .where(reconciliation_run.c.finished_at < period.end)
        .order_by(reconciliation_run.c.finished_at)
    )
    measured: list[tuple[datetime, int]] = []
    for run in runs:
        solvency = json.loads(run.summary).get("solvency") or {}
        notes = json.loads(run.summary).get("notes") or []
        complete = not any(str(n).startswith("solvency: not every chain") for n in notes)
        held = solvency.get("assets_usd_micro")
        if complete and held is not None:
            measured.append((run.finished_at, int(held)))
    out: list[DailyFigure | None] = []
    latest: int | None = None
    index = 0
    for day in period.days():
        while index < len(measured) and measured[index][0] < day.end:
            latest = measured[index][1]
            index += 1
        out.append(None if latest is None else DailyFigure(day.day.isoformat(), latest))
    return out
