"""The operators' web console (issue 20): its sessions

A signed-in browser holds a random token in a cookie; the row keeps only the token's SHA-256,
the API key it signed in with, the CSRF token its forms carry, the time zone its pages show
times in, and when it expires. Sign-out deletes the row.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import UtcDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "token_sha256",
            sa.String(length=64),
            nullable=False,
            comment="SHA-256 of the cookie's random token; the token itself is never stored",
        ),
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column(
            "csrf_token", sa.String(length=64), nullable=False, comment="Sent back in every form"
        ),
        sa.Column(
            "time_zone",
            sa.String(length=64),
            nullable=False,
            comment="IANA name the pages show times in",
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_key.id"], name=op.f("fk_console_session_api_key_id_api_key")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_session")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_console_session_token_sha256")),
    )


def downgrade() -> None:
    op.drop_table("console_session")
