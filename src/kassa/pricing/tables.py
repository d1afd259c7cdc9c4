"""Rate history and rate locks.

`rate_sample` is one aggregated rate for one symbol at one moment, and `rate_quote` holds every
source answer behind it — accepted or rejected, with the reason — so any rate Kassa ever used can
be explained quote by quote. `rate_lock` is the rate a deposit or payout was valued at: written
once per purpose (a unique key such as ``deposit:btc:<txid>:<vout>``), never updated.

All prices are whole USD per whole coin (`Price`, at most 12 decimal places).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
)

from kassa.db.metadata import metadata
from kassa.db.types import BigId, Price, UtcDateTime

rate_sample = Table(
    "rate_sample",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("symbol", String(8), nullable=False, comment="BTC, ETH, TRX or USDT"),
    Column("kind", String(8), nullable=False, comment="live (refresher) or candle (history)"),
    Column("sampled_at", UtcDateTime, nullable=False, comment="The moment the rate is for"),
    Column("market_bid", Price, nullable=False, comment="Median bid of accepted quotes, USD"),
    Column("market_ask", Price, nullable=False, comment="Median ask of accepted quotes, USD"),
    Column("bid", Price, nullable=False, comment="Deposits are valued at this, USD per coin"),
    Column("ask", Price, nullable=False, comment="Payouts are priced at this, USD per coin"),
    Column("spread_bps", Integer, nullable=False, comment="Spread applied, basis points a side"),
    Column("pegged", Boolean, nullable=False, comment="Valued at 1.00 USD (stablecoin at par)"),
    Column("depegged", Boolean, nullable=False, comment="Stablecoin market left the peg band"),
    Column("accepted_count", Integer, nullable=False, comment="Quotes the rate is the median of"),
    Column("recorded_at", UtcDateTime, nullable=False),
    CheckConstraint("kind IN ('live', 'candle')", name="kind"),
    CheckConstraint("accepted_count >= 1", name="accepted_count"),
    Index("ix_rate_sample_symbol_sampled_at", "symbol", "sampled_at"),
)

rate_quote = Table(
    "rate_quote",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("sample_id", BigId, ForeignKey("rate_sample.id"), nullable=False),
    Column("source", String(32), nullable=False),
    Column("bid", Price, nullable=True, comment="USD per coin; null when the source failed"),
    Column("ask", Price, nullable=True, comment="USD per coin; null when the source failed"),
    Column("observed_at", UtcDateTime, nullable=True, comment="The source's time for the price"),
    Column("accepted", Boolean, nullable=False),
    Column("rejection", String(32), nullable=True, comment="stale, outlier, timeout, …"),
    Column("detail", Text, nullable=True),
    CheckConstraint("accepted = (rejection IS NULL)", name="accepted_xor_rejection"),
    Index("ix_rate_quote_sample_id", "sample_id"),
)

rate_lock = Table(
    "rate_lock",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("purpose", String(200), nullable=False, unique=True, comment="What the rate values"),
    Column("asset", String(16), nullable=False, comment="Asset code valued, e.g. USDT-TRC20"),
    Column("symbol", String(8), nullable=False),
    Column("side", String(4), nullable=False, comment="bid (deposits) or ask (payouts)"),
    Column("rate", Price, nullable=False, comment="USD per whole coin, as applied"),
    Column("priced_at", UtcDateTime, nullable=False, comment="The moment the rate is for"),
    Column("sample_id", BigId, ForeignKey("rate_sample.id"), nullable=False),
    Column("sources", Text, nullable=False, comment="JSON list of the sources behind the rate"),
    Column("locked_at", UtcDateTime, nullable=False),
    CheckConstraint("side IN ('bid', 'ask')", name="side"),
)
