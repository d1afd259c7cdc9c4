"""Refund and withdrawal requests and their history.

Each request keeps the policy decision that allowed it (``decision``: every rule applied, with
its reason, and the money breakdown, as JSON) next to the figures the payout will use, so the
request explains itself without re-running the policy. Amount columns are minor units: USD
columns micro-USD, ``net_native`` the payout asset's, ``network_fee_native`` the fee asset's.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)

from kassa.db.metadata import metadata
from kassa.db.types import Amount, BigId, UtcDateTime

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
    # -- execution (migration 0006) --
    Column(
        "fee_charge",
        String(16),
        nullable=False,
        server_default=text("'all'"),
        comment="Network fee the customer bears: all, beyond_flat_fee or none",
    ),
    Column(
        "flat_fee_usd",
        Amount,
        nullable=False,
        server_default=text("0"),
        comment="Flat fee part of fees_usd, micro-USD (for beyond_flat_fee)",
    ),
    Column("review_reasons", Text, nullable=True, comment="Why it waits for review (JSON list)"),
    Column("approvals_required", Integer, nullable=False, server_default=text("1")),
    Column("claimed_by", String(200), nullable=True, comment="Worker holding the lease"),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("next_attempt_at", UtcDateTime, nullable=True, comment="Waiting until then"),
    Column("wait_reason", Text, nullable=True, comment="Why an approved payout is not sent yet"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("tx_id", Uuid, nullable=True, comment="The payout_tx paying it (latest version)"),
    Column("execution_rate_lock_id", Uuid, ForeignKey("rate_lock.id"), nullable=True),
    Column("network_fee_paid_native", Amount, nullable=True, comment="Fee paid on chain"),
    Column("failure_reason", Text, nullable=True),
    Column("settled_at", UtcDateTime, nullable=True, comment="Confirmed or failed"),
    Column("quote_id", Uuid, nullable=True, comment="The payout_quote whose figures it committed"),
    Column(
        "fee_approved_by",
        String(200),
        nullable=True,
        comment="Operator who let it pay a network fee above the quote (house's cost)",
    ),
    CheckConstraint("kind IN ('refund', 'withdrawal')", name="kind"),
    CheckConstraint("fee_charge IN ('all', 'beyond_flat_fee', 'none')", name="fee_charge"),
    CheckConstraint("net_native > 0 AND net_usd > 0 AND gross_usd > 0", name="positive"),
    CheckConstraint("kind = 'withdrawal' OR deposit_id IS NOT NULL", name="refund_has_topup"),
    Index("ix_payout_request_customer_account_id", "customer_account_id", "created_at"),
    Index("ix_payout_request_deposit_id", "deposit_id"),
    Index("ix_payout_request_status", "status"),
    Index("ix_payout_request_destination", "asset", "destination"),
    Index("ix_payout_request_created_at", "created_at"),  # reports (migration 0016)
    Index("ix_payout_request_settled_at", "settled_at"),  # reports (migration 0016)
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
    # -- re-pricing at approval (migration 0013) --
    Column(
        "kind",
        String(16),
        nullable=False,
        server_default=text("'status'"),
        comment="status: a step of its status; repriced: its figures changed (see detail)",
    ),
    Column("detail", Text, nullable=True, comment="A repriced entry's old and new figures"),
    Index("ix_payout_event_request_id", "request_id"),
)
"""A request's history, append-only: every step of its status (``kind = 'status'``) and every
change of its figures (``kind = 'repriced'``, with the old and new figures in ``detail``)."""

payout_approval = Table(
    "payout_approval",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("request_id", Uuid, ForeignKey("payout_request.id"), nullable=False),
    Column("actor", String(200), nullable=False, comment="The operator who approved"),
    Column("note", Text, nullable=True),
    Column("at", UtcDateTime, nullable=False),
    UniqueConstraint("request_id", "actor", name="uq_payout_approval_request_actor"),
)
"""One row per operator approval; append-only. Two rows from different actors are needed
above the dual-approval threshold."""

payout_tx = Table(
    "payout_tx",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("chain", String(8), nullable=False),
    Column("asset", String(16), nullable=False, comment="Payout asset of its lines"),
    Column("txid", String(128), nullable=False),
    Column("spend_key", String(512), nullable=False, comment="Shared by replacements"),
    Column("replaces_id", Uuid, ForeignKey("payout_tx.id"), nullable=True),
    Column("raw", Text, nullable=False, comment="Signed bytes (hex) or TRON broadcast JSON"),
    Column("spend", Text, nullable=False, comment="Spend identity in detail (JSON)"),
    Column("fee_native", Amount, nullable=False, comment="Most it can cost, fee asset"),
    Column("fee_asset", String(16), nullable=False),
    Column("fee_estimate", Text, nullable=False, comment="Fee parameters it was priced at"),
    Column("status", String(16), nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("broadcast_at", UtcDateTime, nullable=True, comment="First accepted broadcast"),
    Column("broadcast_count", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("block_hash", String(128), nullable=True),
    Column("fee_paid_native", Amount, nullable=True, comment="Fee the chain charged"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("settled_at", UtcDateTime, nullable=True),
    CheckConstraint(
        "status IN ('signed', 'broadcast', 'confirmed', 'failed', 'dead')", name="status"
    ),
    UniqueConstraint("chain", "txid", name="uq_payout_tx_chain_txid"),
    Index("ix_payout_tx_status", "status"),
    Index("ix_payout_tx_spend_key", "chain", "spend_key"),
)
"""Every transaction the worker signed, stored before it is broadcast."""

payout_tx_line = Table(
    "payout_tx_line",
    metadata,
    Column("tx_id", Uuid, ForeignKey("payout_tx.id"), nullable=False),
    Column("request_id", Uuid, ForeignKey("payout_request.id"), nullable=False),
    Column("destination", String(128), nullable=False),
    Column("amount_native", Amount, nullable=False, comment="Paid to it, payout asset"),
    Column("fee_share_native", Amount, nullable=False, comment="Its share of the fee charged"),
    Column("output_index", Integer, nullable=True),
    PrimaryKeyConstraint("tx_id", "request_id", name="pk_payout_tx_line"),
    Index("ix_payout_tx_line_request_id", "request_id"),
)
"""Which payouts a transaction pays (one, or several for a BTC batch)."""

payout_nonce = Table(
    "payout_nonce",
    metadata,
    Column("chain", String(8), nullable=False),
    Column("address", String(128), nullable=False),
    Column("next_nonce", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("chain", "address", name="pk_payout_nonce"),
)
"""The next ETH nonce of each hot address. Locked and advanced in the transaction that stores
the signed bytes, so nonces are allocated without gaps. TRON hot addresses have a row too, as a
lock only (``next_nonce`` unused): signers of one address check its funds one at a time."""

btc_hot_utxo = Table(
    "btc_hot_utxo",
    metadata,
    Column("txid", String(64), nullable=False),
    Column("vout", Integer, nullable=False),
    Column("address", String(128), nullable=False),
    Column("value", Amount, nullable=False, comment="Satoshi"),
    Column("script_pubkey", Text, nullable=False, comment="Hex"),
    Column("height", BigInteger, nullable=True, comment="Block height; NULL while unconfirmed"),
    Column("status", String(16), nullable=False, comment="available, reserved or spent"),
    Column("reserved_for", String(512), nullable=True, comment="spend_key of the tx spending it"),
    Column("spent_by_txid", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("txid", "vout", name="pk_btc_hot_utxo"),
    CheckConstraint("status IN ('available', 'reserved', 'spent')", name="status"),
    Index("ix_btc_hot_utxo_address_status", "address", "status"),
)
"""The BTC hot wallet's coins as Kassa knows them: found by scanning final blocks, plus the
change of Kassa's own payouts. A coin is reserved by the payout transaction that spends it."""

btc_hot_sync = Table(
    "btc_hot_sync",
    metadata,
    Column("address", String(128), primary_key=True),
    Column("height", BigInteger, nullable=False, comment="Last block scanned"),
    Column("block_hash", String(64), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
"""How far the hot wallet's coin scan has read the chain."""


payout_quote = Table(
    "payout_quote",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("kind", String(16), nullable=False, comment="refund or withdrawal"),
    Column("customer_account_id", Uuid, ForeignKey("customer_account.id"), nullable=False),
    Column("deposit_id", Uuid, ForeignKey("deposit.id"), nullable=True, comment="Refunded top-up"),
    Column("asset", String(16), nullable=False, comment="Payout asset code"),
    Column("destination", String(128), nullable=True, comment="Canonical address quoted"),
    Column("amount_usd", Amount, nullable=True, comment="Withdrawal: the gross USD asked"),
    Column("rate_lock_id", Uuid, ForeignKey("rate_lock.id"), nullable=False),
    Column("fee_rate_lock_id", Uuid, ForeignKey("rate_lock.id"), nullable=True),
    Column("network_fee_native", Amount, nullable=False, comment="Quoted chain fee, fee asset"),
    Column("network_fee_asset", String(16), nullable=False),
    Column("decision", Text, nullable=False, comment="The decision record quoted (JSON)"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("request_id", Uuid, nullable=True, unique=True, comment="The request that used it"),
    Column("used_at", UtcDateTime, nullable=True),
    CheckConstraint("kind IN ('refund', 'withdrawal')", name="kind"),
    Index("ix_payout_quote_customer_account_id", "customer_account_id", "created_at"),
)
"""Binding quotes: the rate locks, fee and figures a request made within ``expires_at`` commits
exactly (issue 14). A request without a quote gets one made and used in the same transaction."""
