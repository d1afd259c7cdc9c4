"""Ledger tables. Every amount column is `Amount`: exact integer minor units of the row's asset
(satoshi, wei, sun, micro-USDT, micro-USD)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)

from kassa.db.metadata import metadata
from kassa.db.types import Amount, BigId, UtcDateTime

ledger_account = Table(
    "ledger_account",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "code", String(200), nullable=False, unique=True, comment="Stable name, e.g. user:…:USD"
    ),
    Column("asset", String(16), nullable=False),
    Column("normal_side", String(6), nullable=False, comment="debit or credit"),
    Column("kind", String(32), nullable=False, comment="user, revenue, adjustment, fx, wallet…"),
    Column("owner", String(200), nullable=True, comment="Owning customer account id, if any"),
    Column(
        "allow_negative",
        Boolean,
        nullable=False,
        comment="False: available balance may not go below zero (user accounts)",
    ),
    Column("debits_posted", Amount, nullable=False, comment="Sum of posted debits, minor units"),
    Column("credits_posted", Amount, nullable=False, comment="Sum of posted credits, minor units"),
    Column("debits_pending", Amount, nullable=False, comment="Open holds debiting, minor units"),
    Column("credits_pending", Amount, nullable=False, comment="Open holds crediting, minor units"),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("normal_side IN ('debit', 'credit')", name="normal_side"),
    # Running sums never go below zero. On SQLite the amounts are canonical decimal text and
    # compare as text against '0': any negative starts with '-', which sorts before '0'.
    CheckConstraint(
        "debits_posted >= 0 AND credits_posted >= 0 "
        "AND debits_pending >= 0 AND credits_pending >= 0",
        name="sums_not_negative",
    ),
)

ledger_transaction = Table(
    "ledger_transaction",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("memo", Text, nullable=True),
    Column("actor", String(200), nullable=True, comment="Who triggered it (operator, key, worker)"),
    Column("reason", Text, nullable=True),
    Column(
        "reverses_id",
        Uuid,
        ForeignKey("ledger_transaction.id"),
        nullable=True,
        unique=True,
        comment="The transaction this one reverses; a transaction is reversed at most once",
    ),
    Column("hold_id", Uuid, nullable=True, comment="The hold this transaction captured"),
    Column("metadata_json", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_ledger_transaction_created_at", "created_at"),  # reports (migration 0016)
)

ledger_posting = Table(
    "ledger_posting",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("transaction_id", Uuid, ForeignKey("ledger_transaction.id"), nullable=False),
    Column("account_id", BigId, ForeignKey("ledger_account.id"), nullable=False),
    Column("asset", String(16), nullable=False, comment="Copied from the account for sum checks"),
    Column(
        "amount",
        Amount,
        nullable=False,
        comment="Signed minor units of `asset`: positive = debit, negative = credit",
    ),
    CheckConstraint("amount <> 0", name="nonzero"),
    Index("ix_ledger_posting_account_id_id", "account_id", "id"),
    Index("ix_ledger_posting_transaction_id", "transaction_id"),
)

ledger_hold = Table(
    "ledger_hold",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("debit_account_id", BigId, ForeignKey("ledger_account.id"), nullable=False),
    Column("credit_account_id", BigId, ForeignKey("ledger_account.id"), nullable=False),
    Column("asset", String(16), nullable=False),
    Column("amount", Amount, nullable=False, comment="Reserved minor units of `asset`"),
    Column("status", String(16), nullable=False, comment="pending, captured, voided, expired"),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("captured_amount", Amount, nullable=True, comment="Posted minor units on capture"),
    Column("capture_transaction_id", Uuid, ForeignKey("ledger_transaction.id"), nullable=True),
    Column("memo", Text, nullable=True),
    Column("actor", String(200), nullable=True),
    CheckConstraint("status IN ('pending', 'captured', 'voided', 'expired')", name="status"),
    Index("ix_ledger_hold_status_expires_at", "status", "expires_at"),
    Index("ix_ledger_hold_debit_account_id", "debit_account_id"),
)

idempotency_record = Table(
    "idempotency_record",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False, comment="Whose key: an API key id or 'system'"),
    Column("key", String(255), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False, comment="sha256 of the canonical request"),
    Column("outcome", String(64), nullable=True, comment="'ok' or a refusal code"),
    Column("resource_id", String(64), nullable=True),
    Column("detail", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column(
        "response_status",
        Integer,
        nullable=True,
        comment="The HTTP status the first request was answered with",
    ),
    Column(
        "response_body",
        Text,
        nullable=True,
        comment="The JSON body the first request was answered with",
    ),
    UniqueConstraint("scope", "key", name="uq_idempotency_record_scope_key"),
)
