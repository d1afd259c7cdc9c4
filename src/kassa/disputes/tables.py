"""Disputes and their append-only history (migration 0009).

One row per dispute with its current status; every step (opened, resolved) is a
`dispute_event` row with actor and time, which the databases refuse to change or delete.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table, Text, Uuid

from kassa.db.metadata import metadata
from kassa.db.types import Amount, BigId, UtcDateTime

_STATUSES = "'open', 'rejected', 'accepted', 'charged_back'"

dispute = Table(
    "dispute",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_account_id", Uuid, ForeignKey("customer_account.id"), nullable=False),
    Column("subject", String(16), nullable=False, comment="deposit or activation"),
    Column("subject_id", Uuid, nullable=False, comment="The deposit's or activation's id"),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False, comment="The customer's claim, in the operator's words"),
    Column("opened_by", String(200), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False, comment="When the disputed event was"),
    Column("amount_usd", Amount, nullable=False, comment="Micro-USD at stake"),
    Column("resolved_by", String(200), nullable=True),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("note", Text, nullable=True, comment="The resolution's note"),
    Column("transaction_id", Uuid, nullable=True, comment="Ledger entry of the resolution"),
    CheckConstraint("subject IN ('deposit', 'activation')", name="subject"),
    CheckConstraint(f"status IN ({_STATUSES})", name="status"),
    Index("ix_dispute_customer_account_id_status", "customer_account_id", "status"),
    Index("ix_dispute_subject_id", "subject_id"),
)

dispute_event = Table(
    "dispute_event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dispute_id", Uuid, ForeignKey("dispute.id"), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("note", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_dispute_event_dispute_id", "dispute_id"),
)
