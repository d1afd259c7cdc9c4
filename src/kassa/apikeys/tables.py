"""API keys. Only a SHA-256 of the secret is stored: keys are 256-bit random tokens, so a
slow password hash would add nothing but latency."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table, Uuid

from kassa.db.metadata import metadata
from kassa.db.types import UtcDateTime

api_key = Table(
    "api_key",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("prefix", String(32), nullable=False, unique=True, comment="Public lookup part"),
    Column("secret_sha256", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("scopes", String(500), nullable=False, comment="Space-separated scopes"),
    Column(
        "customer_account_id",
        Uuid,
        ForeignKey("customer_account.id"),
        nullable=True,
        comment="When set, the key may only touch this customer account",
    ),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)
