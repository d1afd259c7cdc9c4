"""Writing events: `record` appends one to the outbox inside the caller's transaction.

Call it after the statement that changed the subject's row: that statement holds the row's lock,
so the next event of the same subject (from another transaction) waits for this commit and reads
this event's ``seq`` when it numbers its own. Events never commit on their own: if the change
rolls back, so does its event, and no change commits without the event its caller wrote.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, bindparam, func, insert, select

from kassa.events.catalog import CATALOG
from kassa.events.tables import event


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as written: its public id and its place in its subject's sequence."""

    public_id: str
    seq: int


def new_public_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def record(
    conn: Connection,
    *,
    type: str,
    subject_kind: str,
    subject_id: str | UUID,
    data: Mapping[str, Any],
    at: datetime,
    account_id: UUID | None = None,
) -> Recorded:
    """Append the event `type` about one subject, numbered after the subject's previous ones.

    `type` must be in `kassa.events.catalog.CATALOG` with this subject kind: nothing reaches a
    receiver undocumented."""
    values = draft(
        type=type,
        subject_kind=subject_kind,
        subject_id=subject_id,
        data=data,
        at=at,
        account_id=account_id,
    )
    seq = conn.execute(_APPEND, values).scalar_one()
    return Recorded(public_id=values["public_id"], seq=int(seq))


def draft(
    *,
    type: str,
    subject_kind: str,
    subject_id: str | UUID,
    data: Mapping[str, Any],
    at: datetime,
    account_id: UUID | None = None,
) -> dict[str, Any]:
    """One event's row as `record` writes it (checked against the catalog, its public id
    drawn), for `record_all` to write later with others."""
    known = CATALOG.get(type)
    if known is None or known.subject_kind != subject_kind:
        raise ValueError(f"event type {type!r} about a {subject_kind!r} is not in the catalog")
    return {
        "public_id": new_public_id(),
        "type": type,
        "subject_kind": subject_kind,
        "subject_id": str(subject_id),
        "customer_account_id": account_id,
        "occurred_at": at,
        "data": json.dumps(dict(data), separators=(",", ":"), sort_keys=True, default=str),
    }


def record_all(conn: Connection, drafts: Sequence[Mapping[str, Any]]) -> None:
    """Append `draft`s in their order, as `record` would one after another (each numbered
    after its subject's previous events, those earlier in `drafts` included), in one
    executemany: one round trip on PostgreSQL (psycopg sends the rows in a pipeline)."""
    if drafts:
        conn.execute(_APPEND_MANY, list(drafts))


def _append_statement() -> Any:
    """One statement that numbers the event after its subject's last one and inserts it (a
    subject's first event gets 1), returning the number."""
    columns = (
        "public_id",
        "type",
        "subject_kind",
        "subject_id",
        "customer_account_id",
        "occurred_at",
        "data",
    )
    values = [bindparam(name, type_=event.c[name].type) for name in columns]
    last = (
        select(func.coalesce(func.max(event.c.seq), 0) + 1)
        .where(
            event.c.subject_kind == bindparam("subject_kind"),
            event.c.subject_id == bindparam("subject_id"),
        )
        .scalar_subquery()
    )
    return insert(event).from_select([*columns, "seq"], select(*values, last))


# Built once: every event goes through them (an executemany takes no RETURNING).
_APPEND_MANY = _append_statement()
_APPEND = _APPEND_MANY.returning(event.c.seq)


def types_of(conn: Connection, subject_kind: str, subject_id: str | UUID) -> list[str]:
    """The types of one subject's events, in ``seq`` order (what a receiver saw happen)."""
    return list(
        conn.execute(
            select(event.c.type)
            .where(event.c.subject_kind == subject_kind, event.c.subject_id == str(subject_id))
            .order_by(event.c.seq)
        ).scalars()
    )


def envelope(row: Any) -> dict[str, Any]:
    """The JSON body every delivery of an event carries (the same bytes on every attempt).

    `row` is an ``event`` row. ``subject.seq`` orders one subject's events for a receiver.
    """
    occurred: datetime = row.occurred_at
    return {
        "id": row.public_id,
        "type": row.type,
        "timestamp": occurred.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "account_id": str(row.customer_account_id) if row.customer_account_id else None,
        "subject": {"kind": row.subject_kind, "id": row.subject_id, "seq": row.seq},
        "data": json.loads(row.data),
    }


def body(row: Any) -> bytes:
    """`envelope` as the exact bytes that are signed and sent."""
    return json.dumps(envelope(row), separators=(",", ":"), sort_keys=True).encode()
