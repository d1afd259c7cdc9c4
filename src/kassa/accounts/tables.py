"""Customer accounts: a host service's user, known by its external id, with a USD balance."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table, Text, Uuid

from kassa.db.metadata import metadata
from kassa.db.types import UtcDateTime
from kassa.ledger.tables import BigId

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
    Column("status", String(16), nullable=False, comment="active, suspended, terminated"),
    Column("metadata_json", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
)
