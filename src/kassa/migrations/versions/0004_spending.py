"""Spending: usage batches and events (unique per account and event id), the last usage per
account, activations (each owning one ledger hold), and the append-only history of account
state changes.

account_state_change is append-only on both databases (on PostgreSQL through the
kassa_refuse_history_change() trigger function of 0003).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import Amount, UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_state_change",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
            comment="Order of the changes",
        ),
        sa.Column("customer_account_id", sa.Uuid(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column(
            "reason_code",
            sa.String(length=32),
            nullable=False,
            comment="Machine-readable: violation, serious_breach, geographic, … (policies read it)",
        ),
        sa.Column("reason", sa.Text(), nullable=False, comment="The operator's words"),
        sa.Column(
            "actor", sa.String(length=200), nullable=False, comment="Who changed it (an API key)"
        ),
        sa.Column("changed_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "from_state IN ('active', 'suspended', 'terminated', 'frozen')",
            name=op.f("ck_account_state_change_from_state"),
        ),
        sa.CheckConstraint(
            "to_state IN ('active', 'suspended', 'terminated', 'frozen')",
            name=op.f("ck_account_state_change_to_state"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_account_state_change_customer_account_id_customer_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_state_change")),
    )
    with op.batch_alter_table("account_state_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_account_state_change_account_changed_at",
            ["customer_account_id", "changed_at"],
            unique=False,
        )

    op.create_table(
        "account_usage",
        sa.Column("customer_account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "last_usage_at",
            UtcDateTime(timezone=True),
            nullable=False,
            comment="When usage was last charged (refund policies read it)",
        ),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_account_usage_customer_account_id_customer_account"),
        ),
        sa.PrimaryKeyConstraint("customer_account_id", name=op.f("pk_account_usage")),
    )
    op.create_table(
        "activation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_account_id", sa.Uuid(), nullable=False),
        sa.Column("hold_id", sa.Uuid(), nullable=False, comment="The hold reserving the price"),
        sa.Column(
            "price",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Micro-USD reserved, charged on fulfilment",
        ),
        sa.Column(
            "window_seconds", sa.Integer(), nullable=False, comment="Time allowed for fulfilment"
        ),
        sa.Column(
            "status",
            sa.String(length=16),
            nullable=False,
            comment="pending, fulfilled, cancelled, expired (follows the hold; see activations.py)",
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "actor", sa.String(length=200), nullable=True, comment="Who reserved it (an API key)"
        ),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column(
            "expires_at", UtcDateTime(timezone=True), nullable=False, comment="End of the window"
        ),
        sa.Column("resolved_at", UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'fulfilled', 'cancelled', 'expired')",
            name=op.f("ck_activation_status"),
        ),
        sa.CheckConstraint("price > 0", name=op.f("ck_activation_positive")),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_activation_customer_account_id_customer_account"),
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["ledger_hold.id"], name=op.f("fk_activation_hold_id_ledger_hold")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activation")),
        sa.UniqueConstraint("hold_id", name=op.f("uq_activation_hold_id")),
    )
    with op.batch_alter_table("activation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_activation_customer_account_id_created_at",
            ["customer_account_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_activation_status_expires_at", ["status", "expires_at"], unique=False
        )

    op.create_table(
        "usage_batch",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "transaction_id",
            sa.Uuid(),
            nullable=True,
            comment="The one journal entry charging the batch; null when every event was a replay",
        ),
        sa.Column(
            "charged_events", sa.Integer(), nullable=False, comment="Events charged by this batch"
        ),
        sa.Column(
            "duplicate_events", sa.Integer(), nullable=False, comment="Replays of earlier events"
        ),
        sa.Column(
            "charged_amount",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Micro-USD charged by this batch",
        ),
        sa.Column(
            "actor", sa.String(length=200), nullable=True, comment="Who sent it (an API key)"
        ),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_usage_batch_customer_account_id_customer_account"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transaction.id"],
            name=op.f("fk_usage_batch_transaction_id_ledger_transaction"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_batch")),
    )
    with op.batch_alter_table("usage_batch", schema=None) as batch_op:
        batch_op.create_index(
            "ix_usage_batch_customer_account_id_created_at",
            ["customer_account_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "usage_event",
        sa.Column("customer_account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "event_id", sa.String(length=128), nullable=False, comment="The host's id of the event"
        ),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column(
            "amount",
            Amount(precision=78, scale=0),
            nullable=False,
            comment="Micro-USD charged for the event",
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "created_at", UtcDateTime(timezone=True), nullable=False, comment="When it was charged"
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_usage_event_positive")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["usage_batch.id"], name=op.f("fk_usage_event_batch_id_usage_batch")
        ),
        sa.ForeignKeyConstraint(
            ["customer_account_id"],
            ["customer_account.id"],
            name=op.f("fk_usage_event_customer_account_id_customer_account"),
        ),
        sa.PrimaryKeyConstraint("customer_account_id", "event_id", name=op.f("pk_usage_event")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "customer_account",
            "status",
            existing_type=sa.String(length=16),
            existing_nullable=False,
            comment="active, suspended, terminated, frozen",
            existing_comment="active, suspended, terminated",
        )
        op.execute(
            "CREATE TRIGGER account_state_change_append_only "
            "BEFORE UPDATE OR DELETE ON account_state_change "
            "FOR EACH ROW EXECUTE FUNCTION kassa_refuse_history_change()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER account_state_change_no_{action.lower()} BEFORE {action} "
                "ON account_state_change BEGIN SELECT RAISE(ABORT, "
                "'account_state_change is append-only: history is never rewritten'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP TRIGGER IF EXISTS account_state_change_append_only ON account_state_change"
        )
        op.alter_column(
            "customer_account",
            "status",
            existing_type=sa.String(length=16),
            existing_nullable=False,
            comment="active, suspended, terminated",
            existing_comment="active, suspended, terminated, frozen",
        )
    else:
        for action in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS account_state_change_no_{action}")
    op.drop_table("usage_event")
    with op.batch_alter_table("usage_batch", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_batch_customer_account_id_created_at")

    op.drop_table("usage_batch")
    with op.batch_alter_table("activation", schema=None) as batch_op:
        batch_op.drop_index("ix_activation_status_expires_at")
        batch_op.drop_index("ix_activation_customer_account_id_created_at")

    op.drop_table("activation")
    op.drop_table("account_usage")
    with op.batch_alter_table("account_state_change", schema=None) as batch_op:
        batch_op.drop_index("ix_account_state_change_account_changed_at")

    op.drop_table("account_state_change")
