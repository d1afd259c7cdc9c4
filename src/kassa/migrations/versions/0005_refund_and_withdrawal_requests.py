"""Refund and withdrawal requests with their decision records and history, and the devnet's
scenario-clock offset.

payout_event is append-only on both databases.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import Amount, UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clock_offset",
        sa.Column("id", sa.Integer(), nullable=False, comment="Always 1: one offset per database"),
        sa.Column(
            "offset_seconds", sa.Integer(), nullable=False, comment="Seconds added to database time"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clock_offset")),
    )
    op.create_table(
        "payout_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="refund or withdrawal"),
        sa.Column("customer_account_id", sa.Uuid(), nullable=False),
        sa.Column("deposit_id", sa.Uuid(), nullable=True, comment="Refunded top-up"),
        sa.Column("asset", sa.String(length=16), nullable=False, comment="Payout asset code"),
        sa.Column("destination", sa.String(length=128), nullable=False, comment="Address paid"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "policy", sa.String(length=64), nullable=False, comment="Name of the deciding policy"
        ),
        sa.Column(
            "gross_usd",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Reserved from the balance, micro-USD",
        ),
        sa.Column(
            "fees_usd",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Flat, handling, provider fees, micro-USD",
        ),
        sa.Column(
            "network_fee_usd",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Network fee charged, micro-USD",
        ),
        sa.Column(
            "net_usd", Amount(precision=78, scale=0), nullable=False, comment="Paid out, micro-USD"
        ),
        sa.Column(
            "network_fee_native",
            Amount(precision=78, scale=0),
            nullable=True,
            comment="Quoted chain fee, fee asset",
        ),
        sa.Column("network_fee_asset", sa.String(length=16), nullable=True),
        sa.Column(
            "net_native",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Paid out, payout asset minor units",
        ),
        sa.Column("rate_lock_id", sa.Uuid(), nullable=False),
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column(
            "decision", sa.Text(), nullable=False, comment="The policy decision record (JSON)"
        ),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("review_due_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "requested_by", sa.String(length=16), nullable=False, comment="customer or operator"
        ),
        sa.Column("actor", sa.String(length=200), nullable=False, comment="The API key that asked"),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind = 'withdrawal' OR deposit_id IS NOT NULL",
            name=op.f("ck_payout_request_refund_has_topup"),
        ),
        sa.CheckConstraint("kind IN ('refund', 'withdrawal')", name=op.f("ck_payout_request_kind")),
        sa.CheckConstraint(
            "net_native > 0 AND net_usd > 0 AND gross_usd > 0",
            name=op.f("ck_payout_request_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_payout_request_customer_account_id_customer_account"),
        ),
        sa.ForeignKeyConstraint(
            ["deposit_id"], ["deposit.id"], name=op.f("fk_payout_request_deposit_id_deposit")
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["ledger_hold.id"], name=op.f("fk_payout_request_hold_id_ledger_hold")
        ),
        sa.ForeignKeyConstraint(
            ["rate_lock_id"],
            ["rate_lock.id"],
            name=op.f("fk_payout_request_rate_lock_id_rate_lock"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_request")),
        sa.UniqueConstraint("hold_id", name=op.f("uq_payout_request_hold_id")),
    )
    with op.batch_alter_table("payout_request", schema=None) as batch_op:
        batch_op.create_index(
            "ix_payout_request_customer_account_id",
            ["customer_account_id", "created_at"],
            unique=False,
        )
        batch_op.create_index("ix_payout_request_deposit_id", ["deposit_id"], unique=False)
        batch_op.create_index("ix_payout_request_status", ["status"], unique=False)

    op.create_table(
        "payout_event",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["payout_request.id"],
            name=op.f("fk_payout_event_request_id_payout_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_event")),
    )
    with op.batch_alter_table("payout_event", schema=None) as batch_op:
        batch_op.create_index("ix_payout_event_request_id", ["request_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # kassa_refuse_history_change comes with migration 0003.
        op.execute(
            "CREATE TRIGGER payout_event_append_only BEFORE UPDATE OR DELETE ON payout_event "
            "FOR EACH ROW EXECUTE FUNCTION kassa_refuse_history_change()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER payout_event_no_{action.lower()} BEFORE {action} "
                "ON payout_event BEGIN SELECT RAISE(ABORT, "
                "'payout_event is append-only: history is never rewritten'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS payout_event_append_only ON payout_event")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS payout_event_no_{action}")
    with op.batch_alter_table("payout_event", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_event_request_id")

    op.drop_table("payout_event")
    with op.batch_alter_table("payout_request", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_request_status")
        batch_op.drop_index("ix_payout_request_deposit_id")
        batch_op.drop_index("ix_payout_request_customer_account_id")

    op.drop_table("payout_request")
    op.drop_table("clock_offset")
