"""Idempotent responses: the HTTP status and body an API request answered, stored with its key.

A retry with the same Idempotency-Key gets exactly the first answer back (status and body),
refusals included, whatever the resource's state is now.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_record") as batch:
        batch.add_column(
            sa.Column(
                "response_status",
                sa.Integer(),
                nullable=True,
                comment="The HTTP status the first request was answered with",
            )
        )
        batch.add_column(
            sa.Column(
                "response_body",
                sa.Text(),
                nullable=True,
                comment="The JSON body the first request was answered with",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_record") as batch:
        batch.drop_column("response_body")
        batch.drop_column("response_status")
