"""Payout execution: signed transactions and their lines, operator approvals, ETH nonces, the
BTC hot wallet's coins, and the worker's claim and wait columns on payout_request.

payout_approval is append-only on both databases.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import Amount, UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "btc_hot_sync",
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=False, comment="Last block scanned"),
        sa.Column("block_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_btc_hot_sync")),
    )
    op.create_table(
        "payout_nonce",
        sa.Column("chain", sa.String(length=8), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain", "address", name="pk_payout_nonce"),
    )
    op.create_table(
        "payout_tx",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chain", sa.String(length=8), nullable=False),
        sa.Column(
            "asset", sa.String(length=16), nullable=False, comment="Payout asset of its lines"
        ),
        sa.Column("txid", sa.String(length=128), nullable=False),
        sa.Column(
            "spend_key", sa.String(length=512), nullable=False, comment="Shared by replacements"
        ),
        sa.Column("replaces_id", sa.Uuid(), nullable=True),
        sa.Column(
            "raw", sa.Text(), nullable=False, comment="Signed bytes (hex) or TRON broadcast JSON"
        ),
        sa.Column("spend", sa.Text(), nullable=False, comment="Spend identity in detail (JSON)"),
        sa.Column(
            "fee_native",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Most it can cost, fee asset",
        ),
        sa.Column("fee_asset", sa.String(length=16), nullable=False),
        sa.Column(
            "fee_estimate", sa.Text(), nullable=False, comment="Fee parameters it was priced at"
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "broadcast_at",
            UtcDateTime(timezone=True),
            nullable=True,
            comment="First accepted broadcast",
        ),
        sa.Column("broadcast_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=128), nullable=True),
        sa.Column(
            "fee_paid_native",
            Amount(precision=78, scale=0),
            nullable=True,
            comment="Fee the chain charged",
        ),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("settled_at", UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('signed', 'broadcast', 'confirmed', 'failed', 'dead')",
            name=op.f("ck_payout_tx_status"),
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"], ["payout_tx.id"], name=op.f("fk_payout_tx_replaces_id_payout_tx")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_tx")),
        sa.UniqueConstraint("chain", "txid", name="uq_payout_tx_chain_txid"),
    )
    with op.batch_alter_table("payout_tx", schema=None) as batch_op:
        batch_op.create_index("ix_payout_tx_spend_key", ["chain", "spend_key"], unique=False)
        batch_op.create_index("ix_payout_tx_status", ["status"], unique=False)

    op.create_table(
        "btc_hot_utxo",
        sa.Column("txid", sa.String(length=64), nullable=False),
        sa.Column("vout", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=False),
        sa.Column("value", Amount(precision=78, scale=0), nullable=False, comment="Satoshi"),
        sa.Column("script_pubkey", sa.Text(), nullable=False, comment="Hex"),
        sa.Column(
            "height", sa.BigInteger(), nullable=True, comment="Block height; NULL while unconfirmed"
        ),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="available, reserved or spent"
        ),
        sa.Column(
            "reserved_for",
            sa.String(length=512),
            nullable=True,
            comment="spend_key of the tx spending it",
        ),
        sa.Column("spent_by_txid", sa.String(length=64), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('available', 'reserved', 'spent')", name=op.f("ck_btc_hot_utxo_status")
        ),
        sa.PrimaryKeyConstraint("txid", "vout", name="pk_btc_hot_utxo"),
    )
    with op.batch_alter_table("btc_hot_utxo", schema=None) as batch_op:
        batch_op.create_index("ix_btc_hot_utxo_address_status", ["address", "status"], unique=False)

    op.create_table(
        "payout_approval",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column(
            "actor", sa.String(length=200), nullable=False, comment="The operator who approved"
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["payout_request.id"],
            name=op.f("fk_payout_approval_request_id_payout_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_approval")),
        sa.UniqueConstraint("request_id", "actor", name="uq_payout_approval_request_actor"),
    )
    op.create_table(
        "payout_tx_line",
        sa.Column("tx_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("destination", sa.String(length=128), nullable=False),
        sa.Column(
            "amount_native",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Paid to it, payout asset",
        ),
        sa.Column(
            "fee_share_native",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Its share of the fee charged",
        ),
        sa.Column("output_index", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["payout_request.id"],
            name=op.f("fk_payout_tx_line_request_id_payout_request"),
        ),
        sa.ForeignKeyConstraint(
            ["tx_id"], ["payout_tx.id"], name=op.f("fk_payout_tx_line_tx_id_payout_tx")
        ),
        sa.PrimaryKeyConstraint("tx_id", "request_id", name="pk_payout_tx_line"),
    )
    with op.batch_alter_table("payout_tx_line", schema=None) as batch_op:
        batch_op.create_index("ix_payout_tx_line_request_id", ["request_id"], unique=False)

    with op.batch_alter_table("payout_request", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "fee_charge",
                sa.String(length=16),
                server_default=sa.text("'all'"),
                nullable=False,
                comment="Network fee the customer bears: all, beyond_flat_fee or none",
            )
        )
        batch_op.add_column(
            sa.Column(
                "flat_fee_usd",
                Amount(precision=78, scale=0),
                server_default=sa.text("0"),
                nullable=False,
                comment="Flat fee part of fees_usd, micro-USD (for beyond_flat_fee)",
            )
        )
        batch_op.add_column(
            sa.Column(
                "review_reasons",
                sa.Text(),
                nullable=True,
                comment="Why it waits for review (JSON list)",
            )
        )
        batch_op.add_column(
            sa.Column(
                "approvals_required", sa.Integer(), server_default=sa.text("1"), nullable=False
            )
        )
        batch_op.add_column(
            sa.Column(
                "claimed_by",
                sa.String(length=200),
                nullable=True,
                comment="Worker holding the lease",
            )
        )
        batch_op.add_column(sa.Column("lease_until", UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column(
                "next_attempt_at",
                UtcDateTime(timezone=True),
                nullable=True,
                comment="Waiting until then",
            )
        )
        batch_op.add_column(
            sa.Column(
                "wait_reason",
                sa.Text(),
                nullable=True,
                comment="Why an approved payout is not sent yet",
            )
        )
        batch_op.add_column(
            sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "tx_id",
                sa.Uuid(),
                nullable=True,
                comment="The payout_tx paying it (latest version)",
            )
        )
        batch_op.add_column(sa.Column("execution_rate_lock_id", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "network_fee_paid_native",
                Amount(precision=78, scale=0),
                nullable=True,
                comment="Fee paid on chain",
            )
        )
        batch_op.add_column(sa.Column("failure_reason", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "settled_at",
                UtcDateTime(timezone=True),
                nullable=True,
                comment="Confirmed or failed",
            )
        )
        batch_op.create_index(
            "ix_payout_request_destination", ["asset", "destination"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_payout_request_execution_rate_lock_id_rate_lock"),
            "rate_lock",
            ["execution_rate_lock_id"],
            ["id"],
        )
        batch_op.create_check_constraint(
            op.f("ck_payout_request_fee_charge"), "fee_charge IN ('all', 'beyond_flat_fee', 'none')"
        )

    if op.get_bind().dialect.name == "postgresql":
        # kassa_refuse_history_change comes with migration 0003.
        op.execute(
            "CREATE TRIGGER payout_approval_append_only BEFORE UPDATE OR DELETE ON "
            "payout_approval FOR EACH ROW EXECUTE FUNCTION kassa_refuse_history_change()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER payout_approval_no_{action.lower()} BEFORE {action} "
                "ON payout_approval BEGIN SELECT RAISE(ABORT, "
                "'payout_approval is append-only: history is never rewritten'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS payout_approval_append_only ON payout_approval")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS payout_approval_no_{action}")
    with op.batch_alter_table("payout_request", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_payout_request_fee_charge"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_payout_request_execution_rate_lock_id_rate_lock"), type_="foreignkey"
        )
        batch_op.drop_index("ix_payout_request_destination")
        batch_op.drop_column("settled_at")
        batch_op.drop_column("failure_reason")
        batch_op.drop_column("network_fee_paid_native")
        batch_op.drop_column("execution_rate_lock_id")
        batch_op.drop_column("tx_id")
        batch_op.drop_column("attempts")
        batch_op.drop_column("wait_reason")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("approvals_required")
        batch_op.drop_column("review_reasons")
        batch_op.drop_column("flat_fee_usd")
        batch_op.drop_column("fee_charge")

    with op.batch_alter_table("payout_tx_line", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_tx_line_request_id")

    op.drop_table("payout_tx_line")
    op.drop_table("payout_approval")
    with op.batch_alter_table("btc_hot_utxo", schema=None) as batch_op:
        batch_op.drop_index("ix_btc_hot_utxo_address_status")

    op.drop_table("btc_hot_utxo")
    with op.batch_alter_table("payout_tx", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_tx_status")
        batch_op.drop_index("ix_payout_tx_spend_key")

    op.drop_table("payout_tx")
    op.drop_table("payout_nonce")
    op.drop_table("btc_hot_sync")
