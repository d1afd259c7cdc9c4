"""Disputes and chargebacks (issue 14): the dispute row and its append-only history.

dispute_event is append-only on both databases (on PostgreSQL through the
kassa_refuse_history_change() trigger function of 0003), like account_state_change.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import Amount, UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    _create_dispute()
    _create_dispute_event()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER dispute_event_append_only "
            "BEFORE UPDATE OR DELETE ON dispute_event "
            "FOR EACH ROW EXECUTE FUNCTION kassa_refuse_history_change()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER dispute_event_no_{action.lower()} BEFORE {action} "
                "ON dispute_event BEGIN SELECT RAISE(ABORT, "
                "'dispute_event is append-only: history is never rewritten'); END"
            )


def _create_dispute() -> None:
    op.create_table(
        "dispute",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_account_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(length=16), nullable=False, comment="deposit or activation"),
        sa.Column(
            "subject_id", sa.Uuid(), nullable=False, comment="The deposit's or activation's id"
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "reason",
            sa.Text(),
            nullable=False,
            comment="The customer's claim, in the operator's words",
        ),
        sa.Column("opened_by", sa.String(length=200), nullable=False),
        sa.Column("opened_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "occurred_at",
            UtcDateTime(timezone=True),
            nullable=False,
            comment="When the disputed event was",
        ),
        sa.Column(
            "amount_usd",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Micro-USD at stake",
        ),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True, comment="The resolution's note"),
        sa.Column(
            "transaction_id", sa.Uuid(), nullable=True, comment="Ledger entry of the resolution"
        ),
        sa.CheckConstraint("subject IN ('deposit', 'activation')", name=op.f("ck_dispute_subject")),
        sa.CheckConstraint(
            "status IN ('open', 'rejected', 'accepted', 'charged_back')",
            name=op.f("ck_dispute_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_dispute_customer_account_id_customer_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute")),
    )
    with op.batch_alter_table("dispute", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dispute_customer_account_id_status", ["customer_account_id", "status"]
        )
        batch_op.create_index("ix_dispute_subject_id", ["subject_id"])


def _create_dispute_event() -> None:
    op.create_table(
        "dispute_event",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("dispute_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["dispute.id"], name=op.f("fk_dispute_event_dispute_id_dispute")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_event")),
    )
    with op.batch_alter_table("dispute_event", schema=None) as batch_op:
        batch_op.create_index("ix_dispute_event_dispute_id", ["dispute_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS dispute_event_append_only ON dispute_event")
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS dispute_event_no_{action}")
    op.drop_table("dispute_event")
    op.drop_table("dispute")
