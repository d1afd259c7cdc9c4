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

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from kassa.events.outbox import record
from kassa.reports.reconciliation.model import (
    Break,
    BreakStatus,
    Findings,
    Leg,
    Outcome,
    Scope,
)
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
    new = persisting = 0
    for chunk in findings.chunks():
        added, kept = _store_chunk(conn, chunk, run_id=run_id, now=now)
        new += added
        persisting += kept
    resolved = _resolve_unseen(conn, findings.checked, run_id=run_id, now=now)
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


def _store_chunk(
    conn: Connection, chunk: list[Break], *, run_id: uuid.UUID, now: datetime
) -> tuple[int, int]:
    """Store one chunk of a run's breaks; answer how many are new and how many persist.

    Each chunk looks its keys up in the table (an IN list of at most a chunk's keys stays under
    the drivers' parameter limits): a row this run already wrote (``last_run_id``) is a break
    found twice and kept as first found; an open row persists; a resolved row is new again, on
    its old row; any other key is a new row. Writes are one executemany per kind, so a run that
    finds many breaks stores them in a few round trips per chunk, and never holds more than a
    chunk of them."""
    batch: dict[str, Break] = {}
    for found in chunk:
        batch.setdefault(found.key, found)
    known = {
        row.break_key: row
        for row in conn.execute(
            select(
                reconciliation_break.c.id,
                reconciliation_break.c.break_key,
                reconciliation_break.c.status,
                reconciliation_break.c.last_run_id,
            ).where(reconciliation_break.c.break_key.in_(list(batch)))
        )
    }
    persisting_rows: list[dict[str, Any]] = []
    again: list[dict[str, Any]] = []
    fresh: list[dict[str, Any]] = []
    for key, found in batch.items():
        values = {f"b_{name}": value for name, value in _values(found).items()}
        row = known.get(key)
        if row is None:
            fresh.append({"b_key": key, **values})
        elif row.last_run_id == run_id:
            continue
        elif row.status == BreakStatus.RESOLVED.value:
            again.append({"b_id": row.id, **values})
        else:
            persisting_rows.append({"b_id": row.id, **values})
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
    return len(again) + len(fresh), len(persisting_rows)


def _resolve_unseen(
    conn: Connection, checked: set[Scope], *, run_id: uuid.UUID, now: datetime
) -> int:
    """Resolve, in one statement, the open breaks this run did not find within the scopes it
    checked (a chain whose node did not answer keeps its breaks as they were)."""
    legs = sorted({leg.value for leg, _ in checked if leg is not Leg.CHAINS})
    chains = sorted({str(chain) for leg, chain in checked if leg is Leg.CHAINS and chain})
    scopes: list[ColumnElement[bool]] = [reconciliation_break.c.leg.in_(legs)] if legs else []
    if chains:
        scopes.append(
            and_(
                reconciliation_break.c.leg == Leg.CHAINS.value,
                reconciliation_break.c.chain.in_(chains),
            )
        )
    if not scopes:
        return 0
    done = conn.execute(
        update(reconciliation_break)
        .where(
            reconciliation_break.c.status != BreakStatus.RESOLVED.value,
            reconciliation_break.c.last_run_id != run_id,
            or_(*scopes),
        )
        .values(status=BreakStatus.RESOLVED.value, resolved_at=now, last_run_id=run_id)
    )
    return int(done.rowcount)


def open_breaks(
    conn: Connection, *, include_resolved: bool = False, limit: int | None = None
) -> list[dict[str, Any]]:
    """The breaks as finance reads them (open ones unless `include_resolved`), oldest first;
    the first `limit` of them if given."""
    query = (
        select(reconciliation_break)
        .order_by(reconciliation_break.c.first_seen_at, reconciliation_break.c.id)
        .limit(limit)
    )
    if not include_resolved:
        query = query.where(reconciliation_break.c.status != BreakStatus.RESOLVED.value)
    return [as_dict(row) for row in conn.execute(query)]


def count_open(conn: Connection) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(reconciliation_break)
            .where(reconciliation_break.c.status != BreakStatus.RESOLVED.value)
        ).scalar_one()
    )


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
