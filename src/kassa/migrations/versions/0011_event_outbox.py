"""The event outbox (issue 15): one row per event, written with the change it reports.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column(
            "id", _BIG_ID, autoincrement=True, nullable=False, comment="Internal order of writes"
        ),
        sa.Column(
            "public_id",
            sa.String(length=40),
            nullable=False,
            comment="evt_… : the webhook-id of every send",
        ),
        sa.Column(
            "type",
            sa.String(length=64),
            nullable=False,
            comment="deposit.credited, withdrawal.broadcast, …",
        ),
        sa.Column(
            "subject_kind",
            sa.String(length=32),
            nullable=False,
            comment="deposit, withdrawal, account, …",
        ),
        sa.Column(
            "subject_id",
            sa.String(length=64),
            nullable=False,
            comment="The subject's id (or chain name)",
        ),
        sa.Column("seq", sa.Integer(), nullable=False, comment="1, 2, 3, … per subject"),
        sa.Column(
            "customer_account_id",
            sa.Uuid(),
            nullable=True,
            comment="Whose object it is; empty for the operator's events",
        ),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column(
            "data",
            sa.Text(),
            nullable=False,
            comment="The subject as the API shows it (JSON object)",
        ),
        sa.Column(
            "dispatched_at", UtcDateTime(), nullable=True, comment="When fanned out to endpoints"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event")),
        sa.UniqueConstraint("public_id", name=op.f("uq_event_public_id")),
        sa.UniqueConstraint(
            "subject_kind", "subject_id", "seq", name=op.f("uq_event_subject_kind_subject_id_seq")
        ),
    )
    op.create_index("ix_event_dispatched_at_id", "event", ["dispatched_at", "id"])
    op.create_index("ix_event_occurred_at", "event", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_event_occurred_at", table_name="event")
    op.drop_index("ix_event_dispatched_at_id", table_name="event")
    op.drop_table("event")
