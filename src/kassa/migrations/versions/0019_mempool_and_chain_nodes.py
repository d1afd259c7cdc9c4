"""Mempool deposits and several nodes per chain (issue 18): the ``dropped`` deposit status and
the ``chain_node`` table

A deposit seen in a mempool that leaves it unmined is ``dropped``. Each chain's watcher records
the state of every node it may read (``rpc_urls``) in ``chain_node``, for GET /v1/health and the
metrics.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import UtcDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_OLD = "status IN ('seen', 'confirming', 'credited', 'reversed', 'ignored')"
_NEW = "status IN ('seen', 'confirming', 'credited', 'reversed', 'ignored', 'dropped')"


def _status_check(condition: str) -> None:
    with op.batch_alter_table("deposit") as batch_op:
        batch_op.drop_constraint(op.f("ck_deposit_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_deposit_status"), condition)


def upgrade() -> None:
    _status_check(_NEW)
    op.create_table(
        "chain_node",
        sa.Column("chain", sa.String(length=8), nullable=False),
        sa.Column(
            "priority", sa.Integer(), nullable=False, comment="0 is the primary (rpc_urls order)"
        ),
        sa.Column("url", sa.String(length=300), nullable=False, comment="Without credentials"),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "height", sa.BigInteger(), nullable=True, comment="The node's tip when last asked"
        ),
        sa.Column(
            "latency_ms", sa.Integer(), nullable=True, comment="Its last answer's round trip"
        ),
        sa.Column("errors", sa.Integer(), nullable=False, comment="Failures in a row"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("checked_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('active', 'standby', 'behind', 'down')", name=op.f("ck_chain_node_state")
        ),
        sa.PrimaryKeyConstraint("chain", "priority", name=op.f("pk_chain_node")),
    )


def downgrade() -> None:
    op.drop_table("chain_node")
    # The old schema's nearest status: never credited, final.
    op.execute("UPDATE deposit SET status = 'ignored' WHERE status = 'dropped'")
    _status_check(_OLD)
