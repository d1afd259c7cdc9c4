"""A usage batch's journal entry is checked at COMMIT: the batch is written before its entry

`usage_batch.transaction_id` names the journal entry charging the batch. The usage path now
posts that entry as the last write of its unit of work (the entry locks the house revenue
account every batch credits, so the lock is held only from the entry to COMMIT), and writes the
batch row, with the transaction id allocated up front, before it. The foreign key is therefore
`DEFERRABLE INITIALLY DEFERRED`: still enforced, once, when the unit of work commits. A batch
whose entry was refused is rolled back with it. SQLite rebuilds the table to change it.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_FK = "fk_usage_batch_transaction_id_ledger_transaction"


def _entry_key(*, deferred: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        timing = "DEFERRABLE INITIALLY DEFERRED" if deferred else "NOT DEFERRABLE"
        op.execute(f"ALTER TABLE usage_batch ALTER CONSTRAINT {_FK} {timing}")
        return
    with op.batch_alter_table("usage_batch") as batch_op:
        batch_op.drop_constraint(_FK, type_="foreignkey")
        batch_op.create_foreign_key(
            _FK,
            "ledger_transaction",
            ["transaction_id"],
            ["id"],
            deferrable=True if deferred else None,
            initially="DEFERRED" if deferred else None,
        )


def upgrade() -> None:
    _entry_key(deferred=True)


def downgrade() -> None:
    _entry_key(deferred=False)
