"""A deposit remembers the chargeback that took its USD credit back (issue 14).

A reorg that removes a charged-back deposit's transaction must reverse only the coins (the
customer's USD was already taken back), and the same transaction mined again books the coins
without crediting the customer a second time; ``deposit.chargeback_transaction_id`` is how the
watcher knows.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deposit") as batch:
        batch.add_column(
            sa.Column(
                "chargeback_transaction_id",
                sa.Uuid(),
                nullable=True,
                comment="The chargeback that took the USD credit back (disputes)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("deposit") as batch:
        batch.drop_column("chargeback_transaction_id")
