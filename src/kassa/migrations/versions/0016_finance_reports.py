"""Finance reports (issue 16): indexes on the times the reports select by

The reports read a period's rows by time: journal transactions by ``created_at`` (trial balance
as of an instant, statements, liabilities per day), deposits by payment time, usage batches by
when they were charged, activations by when they were resolved, refunds and withdrawals by when
they were made and settled. Without these indexes each report would scan whole tables.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_ledger_transaction_created_at", "ledger_transaction", ["created_at"]),
    ("ix_deposit_first_seen_at", "deposit", ["first_seen_at"]),
    ("ix_usage_batch_created_at", "usage_batch", ["created_at"]),
    ("ix_activation_resolved_at", "activation", ["resolved_at"]),
    ("ix_payout_request_created_at", "payout_request", ["created_at"]),
    ("ix_payout_request_settled_at", "payout_request", ["settled_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
