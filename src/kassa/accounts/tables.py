"""Customer accounts: a host service's user, known by its external id, with a USD balance, and
the append-only history of its state (active, suspended, terminated, frozen)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Table, Text, Uuid

from kassa.db.metadata import metadata
from kassa.db.types import BigId, UtcDateTime

# Spelled out here (not imported from `states`) so the schema never changes by accident.
_STATES = "'active', 'suspended', 'terminated', 'frozen'"

customer_account = Table(
    "customer_account",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("external_id", String(128), nullable=False, unique=True, comment="Host's user id"),
    Column(
        "ledger_account_id",
        BigId,
        ForeignKey("ledger_account.id"),
        nullable=False,
        unique=True,
        comment="The USD balance (micro-USD, credit-normal liability)",
    ),
    Column("status", String(16), nullable=False, comment="active, suspended, terminated, frozen"),
    Column("metadata_json", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)

account_state_change = Table(
    "account_state_change",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True, comment="Order of the changes"),
    Column("customer_account_id", Uuid, ForeignKey("customer_account.id"), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column(
        "reason_code",
        String(32),
        nullable=False,
        comment="Machine-readable: violation, serious_breach, geographic, … (policies read it)",
    ),
    Column("reason", Text, nullable=False, comment="The operator's words"),
    Column("actor", String(200), nullable=False, comment="Who changed it (an API key)"),
    Column("changed_at", UtcDateTime, nullable=False),
    CheckConstraint(f"from_state IN ({_STATES})", name="from_state"),
    CheckConstraint(f"to_state IN ({_STATES})", name="to_state"),
    Index("ix_account_state_change_account_changed_at", "customer_account_id", "changed_at"),
)
