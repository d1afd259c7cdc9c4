"""Rate history (samples and the quotes behind them) and rate locks.

Rates that valued money are evidence: all three tables are append-only on both databases
(UPDATE and DELETE refused by triggers; TRUNCATE too on PostgreSQL).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kassa.db.types import Price, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RATE_TABLES = ("rate_sample", "rate_quote", "rate_lock")


def upgrade() -> None:
    op.create_table(
        "rate_sample",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("symbol", sa.String(length=8), nullable=False, comment="BTC, ETH, TRX or USDT"),
        sa.Column(
            "kind",
            sa.String(length=8),
            nullable=False,
            comment="live (refresher) or candle (history)",
        ),
        sa.Column(
            "sampled_at",
            UtcDateTime(timezone=True),
            nullable=False,
            comment="The moment the rate is for",
        ),
        sa.Column(
            "market_bid",
            Price(precision=40, scale=12),
            nullable=False,
            comment="Median bid of accepted quotes, USD",
        ),
        sa.Column(
            "market_ask",
            Price(precision=40, scale=12),
            nullable=False,
            comment="Median ask of accepted quotes, USD",
        ),
        sa.Column(
            "bid",
            Price(precision=40, scale=12),
            nullable=False,
            comment="Deposits are valued at this, USD per coin",
        ),
        sa.Column(
            "ask",
            Price(precision=40, scale=12),
            nullable=False,
            comment="Payouts are priced at this, USD per coin",
        ),
        sa.Column(
            "spread_bps",
            sa.Integer(),
            nullable=False,
            comment="Spread applied, basis points a side",
        ),
        sa.Column(
            "pegged", sa.Boolean(), nullable=False, comment="Valued at 1.00 USD (stablecoin at par)"
        ),
        sa.Column(
            "depegged", sa.Boolean(), nullable=False, comment="Stablecoin market left the peg band"
        ),
        sa.Column(
            "accepted_count",
            sa.Integer(),
            nullable=False,
            comment="Quotes the rate is the median of",
        ),
        sa.Column("recorded_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('live', 'candle')", name=op.f("ck_rate_sample_kind")),
        sa.CheckConstraint("accepted_count >= 1", name=op.f("ck_rate_sample_accepted_count")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_sample")),
    )
    with op.batch_alter_table("rate_sample", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rate_sample_symbol_sampled_at", ["symbol", "sampled_at"], unique=False
        )

    op.create_table(
        "rate_lock",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False, comment="What the rate values"),
        sa.Column(
            "asset",
            sa.String(length=16),
            nullable=False,
            comment="Asset code valued, e.g. USDT-TRC20",
        ),
        sa.Column("symbol", sa.String(length=8), nullable=False),
        sa.Column(
            "side", sa.String(length=4), nullable=False, comment="bid (deposits) or ask (payouts)"
        ),
        sa.Column(
            "rate",
            Price(precision=40, scale=12),
            nullable=False,
            comment="USD per whole coin, as applied",
        ),
        sa.Column(
            "priced_at",
            UtcDateTime(timezone=True),
            nullable=False,
            comment="The moment the rate is for",
        ),
        sa.Column(
            "sample_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "sources", sa.Text(), nullable=False, comment="JSON list of the sources behind the rate"
        ),
        sa.Column("locked_at", UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("side IN ('bid', 'ask')", name=op.f("ck_rate_lock_side")),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["rate_sample.id"], name=op.f("fk_rate_lock_sample_id_rate_sample")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_lock")),
        sa.UniqueConstraint("purpose", name=op.f("uq_rate_lock_purpose")),
    )
    op.create_table(
        "rate_quote",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "sample_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column(
            "bid",
            Price(precision=40, scale=12),
            nullable=True,
            comment="USD per coin; null when the source failed",
        ),
        sa.Column(
            "ask",
            Price(precision=40, scale=12),
            nullable=True,
            comment="USD per coin; null when the source failed",
        ),
        sa.Column(
            "observed_at",
            UtcDateTime(timezone=True),
            nullable=True,
            comment="The source's time for the price",
        ),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column(
            "rejection", sa.String(length=32), nullable=True, comment="stale, outlier, timeout, …"
        ),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "accepted = (rejection IS NULL)", name=op.f("ck_rate_quote_accepted_xor_rejection")
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["rate_sample.id"], name=op.f("fk_rate_quote_sample_id_rate_sample")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_quote")),
    )
    with op.batch_alter_table("rate_quote", schema=None) as batch_op:
        batch_op.create_index("ix_rate_quote_sample_id", ["sample_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION kassa_refuse_rate_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: rates that valued money are never changed',
                    TG_TABLE_NAME USING ERRCODE = 'raise_exception';
            END $$
            """
        )
        for table in RATE_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION kassa_refuse_rate_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION kassa_refuse_rate_change()"
            )
    else:
        for table in RATE_TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: rates that valued "
                    "money are never changed'); END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in RATE_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS kassa_refuse_rate_change")
    else:
        for table in RATE_TABLES:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    with op.batch_alter_table("rate_quote", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_quote_sample_id")

    op.drop_table("rate_quote")
    op.drop_table("rate_lock")
    with op.batch_alter_table("rate_sample", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_sample_symbol_sampled_at")

    op.drop_table("rate_sample")
