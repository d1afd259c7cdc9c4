"""Re-pricing at approval (issue 14): a request's history says when its figures changed.

``payout_event.kind`` is ``status`` for every step of a request's status (its creation, each
move, a step that keeps it where it is) and ``repriced`` for the entry that records a request
priced again when an operator approved it (``refund.pricing`` / ``withdrawal.pricing =
"at_approval"``); ``payout_event.detail`` holds that entry's old and new figures as JSON. The
table stays append-only: columns are added in place (no table rebuild), so its triggers stay.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "payout_event",
        sa.Column(
            "kind",
            sa.String(16),
            nullable=False,
            server_default=sa.text("'status'"),
            comment="status: a step of its status; repriced: its figures changed (see detail)",
        ),
    )
    op.add_column(
        "payout_event",
        sa.Column(
            "detail", sa.Text(), nullable=True, comment="A repriced entry's old and new figures"
        ),
    )


def downgrade() -> None:
    # SQLite drops a column in place (3.35+) unless something refers to it; nothing does.
    op.drop_column("payout_event", "detail")
    op.drop_column("payout_event", "kind")
