"""API keys and the web console's sessions. Only a SHA-256 of a secret is stored: keys and
session tokens are 256-bit random tokens, so a slow password hash would add nothing but
latency."""

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

console_session = Table(
    "console_session",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "token_sha256",
        String(64),
        nullable=False,
        unique=True,
        comment="SHA-256 of the cookie's random token; the token itself is never stored",
    ),
    Column("api_key_id", Uuid, ForeignKey("api_key.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False, comment="Sent back in every form"),
    Column("time_zone", String(64), nullable=False, comment="IANA name the pages show times in"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)
"""Operators' web console sessions (`kassa.api.console.sessions`): a row per signed-in browser,
deleted at sign-out; past ``expires_at`` it no longer signs anyone in."""
