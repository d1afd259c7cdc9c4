"""Deposit addresses, deposits, their state history, and what each watcher has scanned.

Idempotency is in the schema: one address per (account, chain); derivation
indexes unique per (chain, key) and handed out by a counter row updated in the same
transaction, so they come without gaps or duplicates; a deposit is unique per
(chain, txid, position).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
)

from kassa.db.metadata import metadata
from kassa.db.types import Amount, BigId, UtcDateTime

address_counter = Table(
    "address_counter",
    metadata,
    Column("chain", String(8), nullable=False),
    Column("key_id", String(16), nullable=False, comment="Fingerprint of the account xpub"),
    Column("next_index", Integer, nullable=False, comment="Next unused derivation index"),
    PrimaryKeyConstraint("chain", "key_id"),
)

deposit_address = Table(
    "deposit_address",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("customer_account_id", Uuid, ForeignKey("customer_account.id"), nullable=False),
    Column("chain", String(8), nullable=False, comment="btc, eth or tron"),
    Column("address", String(128), nullable=False, comment="Canonical text form"),
    Column("match_key", String(128), nullable=False, comment="Form used to match transfers"),
    Column("key_id", String(16), nullable=False, comment="Fingerprint of the account xpub"),
    Column("derivation_index", Integer, nullable=False, comment="External chain index i"),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("customer_account_id", "chain", name="uq_deposit_address_account_chain"),
    UniqueConstraint("chain", "match_key", name="uq_deposit_address_chain_match_key"),
    UniqueConstraint(
        "chain", "key_id", "derivation_index", name="uq_deposit_address_chain_key_index"
    ),
)

deposit = Table(
    "deposit",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("chain", String(8), nullable=False),
    Column("asset", String(16), nullable=False, comment="BTC, ETH, USDT-ERC20, TRX, USDT-TRC20"),
    Column("txid", String(100), nullable=False),
    Column("position", Integer, nullable=False, comment="vout, log index, or -1 (native)"),
    Column("deposit_address_id", BigId, ForeignKey("deposit_address.id"), nullable=False),
    Column("customer_account_id", Uuid, ForeignKey("customer_account.id"), nullable=False),
    Column("amount", Amount, nullable=False, comment="Minor units of `asset` (sat, wei, sun)"),
    Column("sender", String(128), nullable=True, comment="Originating address when known"),
    Column("sender_kind", String(16), nullable=False, comment="known or ambiguous"),
    Column("token_contract", String(128), nullable=True),
    Column("block_height", BigInteger, nullable=True, comment="Null while not in the best chain"),
    Column("block_hash", String(100), nullable=True),
    Column("block_time", UtcDateTime, nullable=True),
    Column("first_seen_at", UtcDateTime, nullable=False, comment="Payment time: rate lock time"),
    Column("confirmations", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text, nullable=True, comment="Why it waits or was ignored"),
    Column("rate_lock_id", Uuid, ForeignKey("rate_lock.id"), nullable=True),
    Column("usd_amount", Amount, nullable=True, comment="Credited micro-USD"),
    Column("credit_count", Integer, nullable=False, comment="Credits posted (re-inclusions)"),
    Column("credit_transaction_id", Uuid, nullable=True, comment="The latest credit"),
    Column("reversal_transaction_id", Uuid, nullable=True, comment="The latest reversal"),
    Column(
        "chargeback_transaction_id",
        Uuid,
        nullable=True,
        comment="The chargeback that took the USD credit back (disputes)",
    ),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("chain", "txid", "position", name="uq_deposit_chain_txid_position"),
    CheckConstraint(
        "status IN ('seen', 'confirming', 'credited', 'reversed', 'ignored', 'dropped')",
        name="status",
    ),
    CheckConstraint("amount > 0", name="positive"),
    Index("ix_deposit_chain_status", "chain", "status"),
    Index("ix_deposit_customer_account_id_first_seen_at", "customer_account_id", "first_seen_at"),
    Index("ix_deposit_first_seen_at", "first_seen_at"),  # reports (migration 0016)
)

deposit_event = Table(
    "deposit_event",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("deposit_id", Uuid, ForeignKey("deposit.id"), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("block_hash", String(100), nullable=True),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_deposit_event_deposit_id", "deposit_id"),
)

chain_block = Table(
    "chain_block",
    metadata,
    Column("chain", String(8), nullable=False),
    Column("height", BigInteger, nullable=False),
    Column("hash", String(100), nullable=False),
    Column("parent_hash", String(100), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("chain", "height"),
)

watcher_checkpoint = Table(
    "watcher_checkpoint",
    metadata,
    Column("chain", String(8), primary_key=True),
    Column("height", BigInteger, nullable=False, comment="Last block fully processed"),
    Column("block_hash", String(100), nullable=False),
    Column("lease_owner", String(100), nullable=True, comment="The watcher process running"),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("head_height", BigInteger, nullable=True, comment="The node's tip at the last tick"),
    Column("final_height", BigInteger, nullable=True, comment="The node's final block then"),
    Column("last_tick_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True, comment="Why the last tick failed, if it did"),
    Column("last_error_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

chain_node = Table(
    "chain_node",
    metadata,
    Column("chain", String(8), nullable=False),
    Column("priority", Integer, nullable=False, comment="0 is the primary (rpc_urls order)"),
    Column("url", String(300), nullable=False, comment="Without credentials"),
    Column("state", String(16), nullable=False),
    Column("height", BigInteger, nullable=True, comment="The node's tip when last asked"),
    Column("latency_ms", Integer, nullable=True, comment="Its last answer's round trip"),
    Column("errors", Integer, nullable=False, comment="Failures in a row"),
    Column("last_error", Text, nullable=True),
    Column("checked_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("chain", "priority"),
    CheckConstraint("state IN ('active', 'standby', 'behind', 'down')", name="state"),
)
