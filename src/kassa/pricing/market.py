"""Devnet market controls: move the `static` source's rates while Kassa runs.

Why
---
A devnet scenario ("BTC falls 20 % while a refund waits in review") needs the market to move
without restarting Kassa with new ``[pricing] static_rates``. An override is stored the way
every rate is: a ``live`` rate sample built from one quote of the source ``devnet-market``, so

* the next quote, lock or valuation uses it at once (the latest live sample is *the* rate), and
  `GET /v1/rates` explains it like any other rate (its quote names ``devnet-market``);
* it survives restarts and the refresher: at each refresh the `static` source serves the latest
  override of a symbol instead of its configured rate (`overrides`), so the market stays where
  the scenario put it until it is moved again;
* no table is added: the history already holds every rate Kassa ever used.

Only the devnet writes overrides: ``POST /v1/admin/rates`` answers 404 ``devnet_market_disabled``
unless Kassa runs on the devnet's scenario clock, and ``kassa devnet rates set`` refuses unless
``devnet = true``. Real sources (coinbase, kraken, …) never read them.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, select

from kassa.pricing import history
from kassa.pricing.aggregate import Rules, aggregate
from kassa.pricing.history import RateSample
from kassa.pricing.model import Quote, Symbol
from kassa.pricing.tables import rate_quote, rate_sample

__all__ = ["MARKET_SOURCE", "overrides", "set_rate"]

MARKET_SOURCE = "devnet-market"
"""The source name an override's quote carries."""


def set_rate(
    conn: Connection, symbol: Symbol, usd_per_coin: Decimal, now: datetime, rules: Rules
) -> RateSample:
    """Record ``usd_per_coin`` as the market rate of ``symbol`` now; return the live sample.

    One quote is the whole market here, so the sample needs one source whatever
    ``min_sources`` says; the spread and the stablecoin peg apply as to any other rate.
    """
    if not usd_per_coin.is_finite() or usd_per_coin <= 0:
        raise ValueError(f"a rate is a positive number of USD per coin, not {usd_per_coin}")
    quote = Quote(MARKET_SOURCE, symbol, usd_per_coin, usd_per_coin, now)
    agg = aggregate(symbol, [quote], [], now, replace(rules, min_sources=1))
    return history.record(conn, agg, kind="live", now=now)


def overrides(conn: Connection) -> dict[Symbol, Decimal]:
    """The latest override of each symbol that has one (what the `static` source serves)."""
    rows = conn.execute(
        select(rate_sample.c.symbol, rate_quote.c.bid)
        .join(rate_sample, rate_sample.c.id == rate_quote.c.sample_id)
        .where(rate_quote.c.source == MARKET_SOURCE, rate_quote.c.accepted)
        .order_by(rate_sample.c.id)
    )
    # Ascending ids: a later override of a symbol replaces an earlier one.
    return {Symbol(row.symbol): Decimal(row.bid) for row in rows}
