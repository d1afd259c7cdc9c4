"""Binding payout quotes (issue 14): what lets a payout pay a network fee above its quote.

The worker sends exactly the coins a request committed and never re-prices them. When the
chain asks a fee above the configured factor of the quoted one, the payout waits until an
operator approves paying it at the house's cost; ``fee_approved_by`` records who did.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payout_request") as batch:
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
