"""Reconciliation breaks and their lifecycle across runs, and the runs (issue 16)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import Amount, UtcDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reconciliation_break",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column(
            "break_key", sa.String(length=400), nullable=False, comment="class|chain|asset|id"
        ),
        sa.Column(
            "leg",
            sa.String(length=16),
            nullable=False,
            comment="ledger, records, chains or solvency",
        ),
        sa.Column(
            "class", sa.String(length=48), nullable=False, comment="What kind of discrepancy"
        ),
        sa.Column("chain", sa.String(length=8), nullable=True),
        sa.Column("asset", sa.String(length=16), nullable=True),
        sa.Column(
            "object_id",
            sa.String(length=200),
            nullable=False,
            comment="The record, account or address",
        ),
        sa.Column(
            "expected", Amount(), nullable=True, comment="Minor units of `asset` (or a count)"
        ),
        sa.Column("actual", Amount(), nullable=True),
        sa.Column("difference", Amount(), nullable=True, comment="actual - expected"),
        sa.Column("detail", sa.Text(), nullable=False, comment="What was found, in words"),
        sa.Column(
            "status", sa.String(length=16), nullable=False, comment="new, persisting or resolved"
        ),
        sa.Column("first_seen_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("resolved_at", UtcDateTime(), nullable=True),
        sa.Column("last_run_id", sa.Uuid(), nullable=False, comment="The run that last changed it"),
        sa.CheckConstraint(
            "status IN ('new', 'persisting', 'resolved')",
            name=op.f("ck_reconciliation_break_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_break")),
        sa.UniqueConstraint("break_key", name=op.f("uq_reconciliation_break_break_key")),
    )
    op.create_index(
        "ix_reconciliation_break_status", "reconciliation_break", ["status"], unique=False
    )
    op.create_table(
        "reconciliation_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime(), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False, comment="cli, api or worker"),
        sa.Column("new_breaks", sa.Integer(), nullable=False),
        sa.Column("persisting_breaks", sa.Integer(), nullable=False),
        sa.Column("resolved_breaks", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False, comment="The run's report (JSON)"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_run")),
    )
    op.create_index(
        "ix_reconciliation_run_started_at", "reconciliation_run", ["started_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_reconciliation_run_started_at", table_name="reconciliation_run")
    op.drop_table("reconciliation_run")
    op.drop_index("ix_reconciliation_break_status", table_name="reconciliation_break")
    op.drop_table("reconciliation_break")
