"""Spending tables: usage batches and their events, the last usage per account, activations.

Idempotency is in the schema: a usage event is unique per (customer account,
event id) — its primary key — so a replayed event can never be charged twice, whichever of two
racing batches carries it. An activation owns exactly one ledger hold.

Every amount column is `Amount`: exact integer micro-USD.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    Uuid,
)

from kassa.db.metadata import metadata
from kassa.db.types import Amount, UtcDateTime

usage_batch = Table(
    "usage_batch",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_account_id", Uuid, ForeignKey("customer_account.id"), nullable=False),
    Column(
        "transaction_id",
        Uuid,
        # Checked at COMMIT: the batch is written before its entry, which is posted last
        # (migration 0021).
        ForeignKey("ledger_transaction.id", deferrable=True, initially="DEFERRED"),
        nullable=True,
        comment="The one journal entry charging the batch; null when every event was a replay",
    ),
    Column("charged_events", Integer, nullable=False, comment="Events charged by this batch"),
    Column("duplicate_events", Integer, nullable=False, comment="Replays of earlier events"),
    Column("charged_amount", Amount, nullable=False, comment="Micro-USD charged by this batch"),
    Column("actor", String(200), nullable=True, comment="Who sent it (an API key)"),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_usage_batch_customer_account_id_created_at", "customer_account_id", "created_at"),
    Index("ix_usage_batch_created_at", "created_at"),  # reports (migration 0016)
)

usage_event = Table(
    "usage_event",
    metadata,
    Column("customer_account_id", Uuid, ForeignKey("customer_account.id"), nullable=False),
    Column("event_id", String(128), nullable=False, comment="The host's id of the event"),
    Column("batch_id", Uuid, ForeignKey("usage_batch.id"), nullable=False),
    Column("amount", Amount, nullable=False, comment="Micro-USD charged for the event"),
    Column("description", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False, comment="When it was charged"),
    # The idempotency key of usage: one charge per event id and account.
    PrimaryKeyConstraint("customer_account_id", "event_id"),
    # On SQLite the amount is decimal text, compared as text with '0': a negative starts
    # with '-', which sorts before '0' (the ledger's running sums use the same check).
    CheckConstraint("amount > 0", name="positive"),
)

account_usage = Table(
    "account_usage",
    metadata,
    Column("customer_account_id", Uuid, ForeignKey("customer_account.id"), primary_key=True),
    Column(
        "last_usage_at",
        UtcDateTime,
        nullable=False,
        comment="When usage was last charged (refund policies read it)",
    ),
)

activation = Table(
    "activation",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_account_id", Uuid, ForeignKey("customer_account.id"), nullable=False),
    Column(
        "hold_id",
        Uuid,
        ForeignKey("ledger_hold.id"),
        nullable=False,
        unique=True,
        comment="The hold reserving the price",
    ),
    Column("price", Amount, nullable=False, comment="Micro-USD reserved, charged on fulfilment"),
    Column("window_seconds", Integer, nullable=False, comment="Time allowed for fulfilment"),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="pending, fulfilled, cancelled, expired (follows the hold; see activations.py)",
    ),
    Column("description", Text, nullable=True),
    Column("actor", String(200), nullable=True, comment="Who reserved it (an API key)"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, comment="End of the window"),
    Column("resolved_at", UtcDateTime, nullable=True),
    CheckConstraint("status IN ('pending', 'fulfilled', 'cancelled', 'expired')", name="status"),
    CheckConstraint("price > 0", name="positive"),
    Index("ix_activation_customer_account_id_created_at", "customer_account_id", "created_at"),
    Index("ix_activation_status_expires_at", "status", "expires_at"),
    Index("ix_activation_resolved_at", "resolved_at"),  # reports (migration 0016)
)
