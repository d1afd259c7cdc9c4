"""Binding payout quotes (issue 14): stored quotes, and what lets a payout pay a fee above one.

A quote (``payout_quote``) keeps the rate locks, the network fee and the decision it showed, with
an expiry; a request made with its id commits exactly those figures (``payout_request.quote_id``),
and a quote is used once. The worker sends exactly the coins a request committed and never
re-prices them. When the chain asks a fee above the configured factor of the quoted one, the
payout waits until an operator approves paying it at the house's cost; ``fee_approved_by``
records who did.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import Amount, UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payout_quote",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False, comment="refund or withdrawal"),
        sa.Column("customer_account_id", sa.Uuid(), nullable=False),
        sa.Column("deposit_id", sa.Uuid(), nullable=True, comment="Refunded top-up"),
        sa.Column("asset", sa.String(16), nullable=False, comment="Payout asset code"),
        sa.Column("destination", sa.String(128), nullable=True, comment="Canonical address quoted"),
        sa.Column("amount_usd", Amount(), nullable=True, comment="Withdrawal: the gross USD asked"),
        sa.Column("rate_lock_id", sa.Uuid(), nullable=False),
        sa.Column("fee_rate_lock_id", sa.Uuid(), nullable=True),
        sa.Column(
            "network_fee_native", Amount(), nullable=False, comment="Quoted chain fee, fee asset"
        ),
        sa.Column("network_fee_asset", sa.String(16), nullable=False),
        sa.Column(
            "decision", sa.Text(), nullable=False, comment="The decision record quoted (JSON)"
        ),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True, comment="The request that used it"),
        sa.Column("used_at", UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('refund', 'withdrawal')", name=op.f("ck_payout_quote_kind")),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_payout_quote_customer_account_id_customer_account"),
        ),
        sa.ForeignKeyConstraint(
            ["deposit_id"], ["deposit.id"], name=op.f("fk_payout_quote_deposit_id_deposit")
        ),
        sa.ForeignKeyConstraint(
            ["rate_lock_id"], ["rate_lock.id"], name=op.f("fk_payout_quote_rate_lock_id_rate_lock")
        ),
        sa.ForeignKeyConstraint(
            ["fee_rate_lock_id"],
            ["rate_lock.id"],
            name=op.f("fk_payout_quote_fee_rate_lock_id_rate_lock"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_quote")),
        sa.UniqueConstraint("request_id", name=op.f("uq_payout_quote_request_id")),
    )
    op.create_index(
        "ix_payout_quote_customer_account_id",
        "payout_quote",
        ["customer_account_id", "created_at"],
    )
    with op.batch_alter_table("payout_request") as batch:
        batch.add_column(
            sa.Column(
                "quote_id",
                sa.Uuid(),
                nullable=True,
                comment="The payout_quote whose figures it committed",
            )
        )
        batch.add_column(
            sa.Column(
                "fee_approved_by",
                sa.String(200),
                nullable=True,
                comment="Operator who let it pay a network fee above the quote (house's cost)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("payout_request") as batch:
        batch.drop_column("fee_approved_by")
        batch.drop_column("quote_id")
    op.drop_index("ix_payout_quote_customer_account_id", table_name="payout_quote")
    op.drop_table("payout_quote")
