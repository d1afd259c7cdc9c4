"""Breaks across runs: new → persisting → resolved.

`apply` takes one run's findings and, in the caller's transaction, updates the table: a break
seen again stays (``persisting``, its figures refreshed, ``first_seen_at`` kept); a break not
seen before, or seen again after it was resolved, is ``new``; an open break this run did not
find is ``resolved`` — but only if the run checked its scope (a chain whose node did not
answer keeps its breaks as they were). The run's row and the operator event
``reconciliation.completed`` are written in the same transaction. Two runs store one after the
other (an advisory lock on PostgreSQL, the writer lock on SQLite).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, text, update

from kassa.events.outbox import record
from kassa.reports.reconciliation.model import Break, BreakStatus, Findings, Outcome
from kassa.reports.reconciliation.tables import reconciliation_break, reconciliation_run

EVENT_TYPE = "reconciliation.completed"
_LOCK_KEY = 0x6B617373_7265636F  # "kassreco"


_COLUMNS = (
    "leg",
    "class",
    "chain",
    "asset",
    "object_id",
    "expected",
    "actual",
    "difference",
    "detail",
)


def _values(found: Break) -> dict[str, Any]:
    return {
        "leg": found.leg.value,
        "class": found.cls.value,
        "chain": found.chain,
        "asset": found.asset,
        "object_id": found.object_id[:200],
        "expected": found.expected,
        "actual": found.actual,
        "difference": found.difference,
        "detail": found.detail,
    }


def apply(
    conn: Connection,
    findings: Findings,
    *,
    run_id: uuid.UUID,
    started_at: datetime,
    now: datetime,
    trigger: str,
    summary: dict[str, Any],
) -> Outcome:
    if conn.dialect.name == "postgresql":
        # Two runs (the worker's and an operator's) store one after the other; SQLite's
        # writer lock does the same there.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    open_rows = {
        row.break_key: row
        for row in conn.execute(
            select(
                reconciliation_break.c.id,
                reconciliation_break.c.break_key,
                reconciliation_break.c.status,
                reconciliation_break.c.leg,
                reconciliation_break.c.chain,
            ).where(reconciliation_break.c.status != BreakStatus.RESOLVED.value)
        )
    }
    persisting_rows: list[dict[str, Any]] = []
    new_rows: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for found in findings.breaks:
        key = found.key
        if key in seen:
            continue
        seen.add(key)
        row = open_rows.get(key)
        values = {f"b_{name}": value for name, value in _values(found).items()}
        if row is not None:
            persisting_rows.append({"b_key": key, "b_id": row.id, **values})
        else:
            new_rows[key] = {"b_key": key, **values}
    # A break found again after it was resolved is new again, on its old row.
    reopened: dict[str, uuid.UUID] = {}
    if new_rows:
        # Read in one pass (an IN list of every new key would pass the drivers' parameter
        # limit on a run that finds tens of thousands of breaks).
        for earlier in conn.execute(
            select(reconciliation_break.c.id, reconciliation_break.c.break_key).where(
                reconciliation_break.c.status == BreakStatus.RESOLVED.value
            )
        ):
            if earlier.break_key in new_rows:
                reopened[earlier.break_key] = earlier.id
    # Executemany, one statement per kind of write: a run that finds many breaks (a broken
    # import, a fresh install) stores them in a few round trips, not one per break.
    columns: dict[str, Any] = {name: bindparam(f"b_{name}") for name in _COLUMNS}
    if persisting_rows:
        conn.execute(
            update(reconciliation_break)
            .where(reconciliation_break.c.id == bindparam("b_id"))
            .values(
                status=BreakStatus.PERSISTING.value,
                last_seen_at=now,
                last_run_id=run_id,
                **columns,
            ),
            persisting_rows,
        )
    again = [
        {**values, "b_id": reopened[key]} for key, values in new_rows.items() if key in reopened
    ]
    if again:
        conn.execute(
            update(reconciliation_break)
            .where(reconciliation_break.c.id == bindparam("b_id"))
            .values(
                status=BreakStatus.NEW.value,
                first_seen_at=now,
                last_seen_at=now,
                resolved_at=None,
                last_run_id=run_id,
                **columns,
            ),
            again,
        )
    fresh = [values for key, values in new_rows.items() if key not in reopened]
    if fresh:
        conn.execute(
            insert(reconciliation_break).values(
                break_key=bindparam("b_key"),
                status=BreakStatus.NEW.value,
                first_seen_at=now,
                last_seen_at=now,
                last_run_id=run_id,
                **columns,
            ),
            fresh,
        )
    new, persisting = len(new_rows), len(persisting_rows)
    checked = {(leg.value, chain) for leg, chain in findings.checked}
    gone = [
        {"b_id": row.id}
        for key, row in open_rows.items()
        if key not in seen and (row.leg, row.chain if row.leg == "chains" else None) in checked
    ]
    if gone:
        conn.execute(
            update(reconciliation_break)
            .where(reconciliation_break.c.id == bindparam("b_id"))
            .values(status=BreakStatus.RESOLVED.value, resolved_at=now, last_run_id=run_id),
            gone,
        )
    resolved = len(gone)
    counts = {"new": new, "persisting": persisting, "resolved": resolved}
    summary = {"run_id": str(run_id), "breaks": counts, **summary}
    conn.execute(
        insert(reconciliation_run).values(
            id=run_id,
            started_at=started_at,
            finished_at=now,
            trigger=trigger,
            new_breaks=new,
            persisting_breaks=persisting,
            resolved_breaks=resolved,
            summary=json.dumps(summary, sort_keys=True, default=str),
        )
    )
    record(
        conn,
        type=EVENT_TYPE,
        subject_kind="reconciliation",
        subject_id="reconciliation",
        data={
            "run_id": str(run_id),
            **counts,
            "open": new + persisting,
            "coverage": summary.get("solvency", {}).get("coverage"),
        },
        at=now,
    )
    return Outcome(run_id, new, persisting, resolved, summary)


def open_breaks(conn: Connection, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    """The breaks as finance reads them (open ones unless `include_resolved`), oldest first."""
    query = select(reconciliation_break).order_by(
        reconciliation_break.c.first_seen_at, reconciliation_break.c.id
    )
    if not include_resolved:
        query = query.where(reconciliation_break.c.status != BreakStatus.RESOLVED.value)
    return [as_dict(row) for row in conn.execute(query)]


def as_dict(row: Any) -> dict[str, Any]:
    def number(value: int | None) -> str | None:
        return None if value is None else str(value)

    return {
        "class": row._mapping["class"],
        "leg": row.leg,
        "chain": row.chain,
        "asset": row.asset,
        "object_id": row.object_id,
        "expected": number(row.expected),
        "actual": number(row.actual),
        "difference": number(row.difference),
        "detail": row.detail,
        "status": row.status,
        "first_seen_at": row.first_seen_at,
        "last_seen_at": row.last_seen_at,
        "resolved_at": row.resolved_at,
    }


def latest_run(conn: Connection) -> dict[str, Any] | None:
    row = conn.execute(
        select(reconciliation_run.c.summary)
        .order_by(reconciliation_run.c.started_at.desc())
        .limit(1)
    ).first()
    return None if row is None else dict(json.loads(row.summary))
