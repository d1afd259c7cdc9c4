"""Refund and withdrawal requests and their history.

Each request keeps the policy decision that allowed it (``decision``: every rule applied, with
its reason, and the money breakdown, as JSON) next to the figures the payout will use, so the
request explains itself without re-running the policy. Amount columns are minor units: USD
columns micro-USD, ``net_native`` the payout asset's, ``network_fee_native`` the fee asset's.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    Uuid,
)

from kassa.db.metadata import metadata
from kassa.db.types import Amount, UtcDateTime
from kassa.ledger.tables import BigId

payout_request = Table(
    "payout_request",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(16), nullable=False, comment="refund or withdrawal"),
    Column("customer_account_id", Uuid, ForeignKey("customer_account.id"), nullable=False),
    Column("deposit_id", Uuid, ForeignKey("deposit.id"), nullable=True, comment="Refunded top-up"),
    Column("asset", String(16), nullable=False, comment="Payout asset code"),
    Column("destination", String(128), nullable=False, comment="Address paid"),
    Column("status", String(16), nullable=False),
    Column("policy", String(64), nullable=False, comment="Name of the deciding policy"),
    Column("gross_usd", Amount, nullable=False, comment="Reserved from the balance, micro-USD"),
    Column("fees_usd", Amount, nullable=False, comment="Flat, handling, provider fees, micro-USD"),
    Column("network_fee_usd", Amount, nullable=False, comment="Network fee charged, micro-USD"),
    Column("net_usd", Amount, nullable=False, comment="Paid out, micro-USD"),
    Column("network_fee_native", Amount, nullable=True, comment="Quoted chain fee, fee asset"),
    Column("network_fee_asset", String(16), nullable=True),
    Column("net_native", Amount, nullable=False, comment="Paid out, payout asset minor units"),
    Column("rate_lock_id", Uuid, ForeignKey("rate_lock.id"), nullable=False),
    Column("hold_id", Uuid, ForeignKey("ledger_hold.id"), nullable=False, unique=True),
    Column("decision", Text, nullable=False, comment="The policy decision record (JSON)"),
    Column("needs_review", Boolean, nullable=False),
    Column("review_due_at", UtcDateTime, nullable=True),
    Column("requested_by", String(16), nullable=False, comment="customer or operator"),
    Column("actor", String(200), nullable=False, comment="The API key that asked"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("kind IN ('refund', 'withdrawal')", name="kind"),
    CheckConstraint("net_native > 0 AND net_usd > 0 AND gross_usd > 0", name="positive"),
    CheckConstraint("kind = 'withdrawal' OR deposit_id IS NOT NULL", name="refund_has_topup"),
    Index("ix_payout_request_customer_account_id", "customer_account_id", "created_at"),
    Index("ix_payout_request_deposit_id", "deposit_id"),
    Index("ix_payout_request_status", "status"),
)

payout_event = Table(
    "payout_event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("request_id", Uuid, ForeignKey("payout_request.id"), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_payout_event_request_id", "request_id"),
)
