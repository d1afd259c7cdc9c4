"""Deposit addresses (with a gap-free index counter), deposits and their state history, and
the blocks and checkpoint each chain watcher keeps.

deposit_event is append-only on both databases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import Amount, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "address_counter",
        sa.Column("chain", sa.String(length=8), nullable=False),
        sa.Column(
            "key_id",
            sa.String(length=16),
            nullable=False,
            comment="Fingerprint of the account xpub",
        ),
        sa.Column(
            "next_index", sa.Integer(), nullable=False, comment="Next unused derivation index"
        ),
        sa.PrimaryKeyConstraint("chain", "key_id", name=op.f("pk_address_counter")),
    )
    op.create_table(
        "chain_block",
        sa.Column("chain", sa.String(length=8), nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=100), nullable=False),
        sa.Column("parent_hash", sa.String(length=100), nullable=False),
        sa.Column("time", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain", "height", name=op.f("pk_chain_block")),
    )
    op.create_table(
        "watcher_checkpoint",
        sa.Column("chain", sa.String(length=8), nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=False, comment="Last block fully processed"),
        sa.Column("block_hash", sa.String(length=100), nullable=False),
        sa.Column(
            "lease_owner",
            sa.String(length=100),
            nullable=True,
            comment="The watcher process running",
        ),
        sa.Column("lease_until", UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "head_height",
            sa.BigInteger(),
            nullable=True,
            comment="The node's tip at the last tick",
        ),
        sa.Column(
            "final_height", sa.BigInteger(), nullable=True, comment="The node's final block then"
        ),
        sa.Column("last_tick_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "last_error", sa.Text(), nullable=True, comment="Why the last tick failed, if it did"
        ),
        sa.Column("last_error_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_watcher_checkpoint")),
    )
    op.create_table(
        "deposit_address",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("customer_account_id", sa.Uuid(), nullable=False),
        sa.Column("chain", sa.String(length=8), nullable=False, comment="btc, eth or tron"),
        sa.Column("address", sa.String(length=128), nullable=False, comment="Canonical text form"),
        sa.Column(
            "match_key",
            sa.String(length=128),
            nullable=False,
            comment="Form used to match transfers",
        ),
        sa.Column(
            "key_id",
            sa.String(length=16),
            nullable=False,
            comment="Fingerprint of the account xpub",
        ),
        sa.Column(
            "derivation_index", sa.Integer(), nullable=False, comment="External chain index i"
        ),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_deposit_address_customer_account_id_customer_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deposit_address")),
        sa.UniqueConstraint(
            "chain", "key_id", "derivation_index", name="uq_deposit_address_chain_key_index"
        ),
        sa.UniqueConstraint("chain", "match_key", name="uq_deposit_address_chain_match_key"),
        sa.UniqueConstraint(
            "customer_account_id", "chain", name="uq_deposit_address_account_chain"
        ),
    )
    op.create_table(
        "deposit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chain", sa.String(length=8), nullable=False),
        sa.Column(
            "asset",
            sa.String(length=16),
            nullable=False,
            comment="BTC, ETH, USDT-ERC20, TRX, USDT-TRC20",
        ),
        sa.Column("txid", sa.String(length=100), nullable=False),
        sa.Column(
            "position", sa.Integer(), nullable=False, comment="vout, log index, or -1 (native)"
        ),
        sa.Column(
            "deposit_address_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("customer_account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "amount",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Minor units of `asset` (sat, wei, sun)",
        ),
        sa.Column(
            "sender", sa.String(length=128), nullable=True, comment="Originating address when known"
        ),
        sa.Column(
            "sender_kind", sa.String(length=16), nullable=False, comment="known or ambiguous"
        ),
        sa.Column("token_contract", sa.String(length=128), nullable=True),
        sa.Column(
            "block_height",
            sa.BigInteger(),
            nullable=True,
            comment="Null while not in the best chain",
        ),
        sa.Column("block_hash", sa.String(length=100), nullable=True),
        sa.Column("block_time", UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "first_seen_at",
            UtcDateTime(timezone=True),
            nullable=False,
            comment="Payment time: rate lock time",
        ),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True, comment="Why it waits or was ignored"),
        sa.Column("rate_lock_id", sa.Uuid(), nullable=True),
        sa.Column(
            "usd_amount", Amount(precision=78, scale=0), nullable=True, comment="Credited micro-USD"
        ),
        sa.Column(
            "credit_count", sa.Integer(), nullable=False, comment="Credits posted (re-inclusions)"
        ),
        sa.Column("credit_transaction_id", sa.Uuid(), nullable=True, comment="The latest credit"),
        sa.Column(
            "reversal_transaction_id", sa.Uuid(), nullable=True, comment="The latest reversal"
        ),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('seen', 'confirming', 'credited', 'reversed', 'ignored')",
            name=op.f("ck_deposit_status"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_deposit_positive")),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_deposit_customer_account_id_customer_account"),
        ),
        sa.ForeignKeyConstraint(
            ["deposit_address_id"],
            ["deposit_address.id"],
            name=op.f("fk_deposit_deposit_address_id_deposit_address"),
        ),
        sa.ForeignKeyConstraint(
            ["rate_lock_id"], ["rate_lock.id"], name=op.f("fk_deposit_rate_lock_id_rate_lock")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deposit")),
        sa.UniqueConstraint("chain", "txid", "position", name="uq_deposit_chain_txid_position"),
    )
    with op.batch_alter_table("deposit", schema=None) as batch_op:
        batch_op.create_index("ix_deposit_chain_status", ["chain", "status"], unique=False)
        batch_op.create_index(
            "ix_deposit_customer_account_id_first_seen_at",
            ["customer_account_id", "first_seen_at"],
            unique=False,
        )

    op.create_table(
        "deposit_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("deposit_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("block_hash", sa.String(length=100), nullable=True),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deposit_id"], ["deposit.id"], name=op.f("fk_deposit_event_deposit_id_deposit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deposit_event")),
    )
    with op.batch_alter_table("deposit_event", schema=None) as batch_op:
        batch_op.create_index("ix_deposit_event_deposit_id", ["deposit_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION kassa_refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: history is never rewritten', TG_TABLE_NAME
                    USING ERRCODE = 'raise_exception';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER deposit_event_append_only BEFORE UPDATE OR DELETE ON deposit_event "
            "FOR EACH ROW EXECUTE FUNCTION kassa_refuse_history_change()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER deposit_event_no_{action.lower()} BEFORE {action} "
                "ON deposit_event BEGIN SELECT RAISE(ABORT, "
                "'deposit_event is append-only: history is never rewritten'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS deposit_event_append_only ON deposit_event")
        op.execute("DROP FUNCTION IF EXISTS kassa_refuse_history_change")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS deposit_event_no_{action}")
    with op.batch_alter_table("deposit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_deposit_event_deposit_id")

    op.drop_table("deposit_event")
    with op.batch_alter_table("deposit", schema=None) as batch_op:
        batch_op.drop_index("ix_deposit_customer_account_id_first_seen_at")
        batch_op.drop_index("ix_deposit_chain_status")

    op.drop_table("deposit")
    op.drop_table("deposit_address")
    op.drop_table("watcher_checkpoint")
    op.drop_table("chain_block")
    op.drop_table("address_counter")
