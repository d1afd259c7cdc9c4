"""Placeholder for webhook endpoints, deliveries and attempts (issue 15)

Filled by the branch that builds it; empty until then.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
