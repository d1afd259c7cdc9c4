"""The operator's events, fired on transitions only.

A watcher that lags, a rate that is missing or off its peg, a hot wallet that runs low: the
loops that notice these run every few seconds, and an operator wants one event when the trouble
starts and one when it ends, not one per round. The state of an episode is the type of the
subject's last event, so nothing else is stored: `settle` writes an event only when the
condition now differs from what the last event said (and says nothing about a subject that was
never in trouble).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from kassa.events.outbox import Recorded, record
from kassa.events.tables import event


def last_type(conn: Connection, subject_kind: str, subject_id: str) -> str | None:
    """The type of the subject's latest event (one indexed lookup)."""
    found: str | None = conn.execute(
        select(event.c.type)
        .where(event.c.subject_kind == subject_kind, event.c.subject_id == subject_id)
        .order_by(event.c.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    return found


def settle(
    conn: Connection,
    *,
    subject_kind: str,
    subject_id: str,
    trouble: str | None,
    recovered: str,
    data: Mapping[str, Any],
    at: datetime,
) -> Recorded | None:
    """Record `trouble` (the event type of the condition now) or, with None, `recovered` —
    but only when the subject's last event says otherwise."""
    last = last_type(conn, subject_kind, subject_id)
    wanted = trouble if trouble is not None else (None if last in (None, recovered) else recovered)
    if wanted is None or wanted == last:
        return None
    return record(
        conn, type=wanted, subject_kind=subject_kind, subject_id=subject_id, data=data, at=at
    )
