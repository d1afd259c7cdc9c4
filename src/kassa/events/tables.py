"""The outbox: one row per event, written in the transaction of the change it reports
(migration 0011).

``seq`` numbers the events of one subject (1, 2, 3, …) so a receiver can order them; the unique
index makes two transactions that would give one subject the same number fail loudly instead of
reporting an order that did not happen. ``dispatched_at`` stays empty until the delivery side
has fanned the event out to the endpoints that want it.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text, UniqueConstraint, Uuid

from kassa.db.metadata import metadata
from kassa.db.types import BigId, UtcDateTime

event = Table(
    "event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True, comment="Internal order of writes"),
    Column("public_id", String(40), nullable=False, comment="evt_… : the webhook-id of every send"),
    Column("type", String(64), nullable=False, comment="deposit.credited, withdrawal.broadcast, …"),
    Column("subject_kind", String(32), nullable=False, comment="deposit, withdrawal, account, …"),
    Column("subject_id", String(64), nullable=False, comment="The subject's id (or chain name)"),
    Column("seq", Integer, nullable=False, comment="1, 2, 3, … per subject"),
    Column(
        "customer_account_id",
        Uuid,
        nullable=True,
        comment="Whose object it is; empty for the operator's events",
    ),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("data", Text, nullable=False, comment="The subject as the API shows it (JSON object)"),
    Column("dispatched_at", UtcDateTime, nullable=True, comment="When fanned out to endpoints"),
    UniqueConstraint("public_id"),
    UniqueConstraint("subject_kind", "subject_id", "seq"),
    Index("ix_event_dispatched_at_id", "dispatched_at", "id"),
    Index("ix_event_occurred_at", "occurred_at"),
)
