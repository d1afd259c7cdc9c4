"""Turning source quotes into one rate: a pure function of (quotes, failures, now, rules).

1. A quote is rejected when it is not a positive price (``bad_price``), older than
   ``max_quote_age`` (``stale``), or stamped in the future beyond a small skew (``future``).
2. The median mid of the remaining quotes is the reference; a quote whose mid lies further than
   ``outlier_band_bps`` from it is an ``outlier``.
3. With fewer than ``min_sources`` accepted quotes there is no rate: `NoRate` says why, and
   nothing is valued at a guess.
4. Market bid and ask are the medians of the accepted bids and asks (since every quote has
   bid ≤ ask, the median bid never exceeds the median ask). The spread then widens them: the bid
   (deposits) goes down and the ask (payouts, refunds) goes up, rounded away from the customer
   to 12 decimal places — so the spread never works against the house.
5. USDT is valued at exactly 1.00 while the market mid stays within ``usdt_peg_band_bps`` of par;
   outside the band (a de-peg) the market price is used, with the spread, and flagged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from statistics import median

from kassa.db.types import PRICE_SCALE
from kassa.pricing.errors import NoRate
from kassa.pricing.model import Quote, SourceError, Symbol

log = logging.getLogger(__name__)

ALLOWED_FUTURE_SKEW = timedelta(seconds=30)
_QUANTUM = Decimal(1).scaleb(-PRICE_SCALE)
_BPS = Decimal(10_000)
PAR = Decimal(1)


@dataclass(frozen=True, slots=True)
class Rules:
    min_sources: int
    max_quote_age: timedelta
    outlier_band_bps: int
    spread_bps: int
    usdt_peg_band_bps: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """One source's answer and what aggregation made of it (``rejection`` None = accepted)."""

    source: str
    quote: Quote | None
    rejection: str | None
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        return self.rejection is None


@dataclass(frozen=True, slots=True)
class Aggregate:
    """An aggregated rate, with every verdict behind it."""

    symbol: Symbol
    sampled_at: datetime
    market_bid: Decimal
    market_ask: Decimal
    bid: Decimal
    ask: Decimal
    spread_bps: int
    pegged: bool
    depegged: bool
    verdicts: tuple[Verdict, ...]

    @property
    def accepted_count(self) -> int:
        return sum(1 for v in self.verdicts if v.accepted)


def judge(
    symbol: Symbol,
    quotes: Sequence[Quote],
    failures: Sequence[SourceError],
    now: datetime,
    rules: Rules,
) -> tuple[Verdict, ...]:
    """Accept or reject every quote (steps 1–2); failures become rejected verdicts too."""
    verdicts: list[Verdict] = [Verdict(f.source, None, f.reason, f.detail) for f in failures]
    healthy: list[Quote] = []
    for quote in quotes:
        if quote.symbol is not symbol:
            raise ValueError(f"a {quote.symbol} quote was given to the {symbol} aggregation")
        problem = _basic_problem(quote, now, rules)
        if problem is None:
            healthy.append(quote)
        else:
            verdicts.append(Verdict(quote.source, quote, *problem))
    if healthy:
        reference = median(q.mid for q in healthy)
        band = reference * rules.outlier_band_bps / _BPS
        for quote in healthy:
            distance = abs(quote.mid - reference)
            if distance > band:
                share = (distance / reference * _BPS).quantize(Decimal(1))
                detail = f"mid {quote.mid} is {share} bps from the median {reference}"
                verdicts.append(Verdict(quote.source, quote, "outlier", detail))
            else:
                verdicts.append(Verdict(quote.source, quote, None))
    return tuple(verdicts)


def _basic_problem(quote: Quote, now: datetime, rules: Rules) -> tuple[str, str] | None:
    if quote.bid <= 0 or quote.ask <= 0 or not (quote.bid.is_finite() and quote.ask.is_finite()):
        return "bad_price", f"bid {quote.bid} / ask {quote.ask} is not a positive price"
    if quote.bid > quote.ask:
        return "bad_price", f"bid {quote.bid} is above ask {quote.ask}"
    age = now - quote.observed_at
    if age > rules.max_quote_age:
        return "stale", f"quoted {int(age.total_seconds())} s ago, limit {rules.max_quote_age}"
    if -age > ALLOWED_FUTURE_SKEW:
        return "future", f"stamped {int(-age.total_seconds())} s in the future"
    return None


def aggregate(
    symbol: Symbol,
    quotes: Sequence[Quote],
    failures: Sequence[SourceError],
    now: datetime,
    rules: Rules,
) -> Aggregate:
    """The rate for `symbol` now, or `NoRate` explaining which quotes were missing or rejected."""
    verdicts = judge(symbol, quotes, failures, now, rules)
    accepted = [v.quote for v in verdicts if v.accepted and v.quote is not None]
    if len(accepted) < rules.min_sources:
        raise NoRate(_no_rate_detail(symbol, verdicts, len(accepted), rules.min_sources))
    market_bid = median(q.bid for q in accepted)
    market_ask = median(q.ask for q in accepted)
    return price_from_market(symbol, now, market_bid, market_ask, verdicts, rules)


def price_from_market(
    symbol: Symbol,
    sampled_at: datetime,
    market_bid: Decimal,
    market_ask: Decimal,
    verdicts: tuple[Verdict, ...],
    rules: Rules,
) -> Aggregate:
    """Apply the USDT peg and the spread to a market bid/ask (steps 4–5).

    The spread applies to the exact market values; each result is then rounded once, bids down
    and asks up.
    """
    pegged = depegged = False
    if symbol is Symbol.USDT:
        mid = (market_bid + market_ask) / 2
        if abs(mid - PAR) * _BPS <= rules.usdt_peg_band_bps:
            pegged = True
        else:
            depegged = True
            log.warning(
                "USDT de-peg: market mid %s USD is outside the %s bps band; using market price",
                mid,
                rules.usdt_peg_band_bps,
            )
    if pegged:
        bid = ask = PAR
    else:
        spread = Decimal(rules.spread_bps) / _BPS
        bid = _as_price(market_bid * (1 - spread), ROUND_FLOOR)
        ask = _as_price(market_ask * (1 + spread), ROUND_CEILING)
    if bid <= 0:
        raise NoRate(f"{symbol}: the spread leaves no positive bid (market bid {market_bid})")
    return Aggregate(
        symbol=symbol,
        sampled_at=sampled_at,
        market_bid=_as_price(market_bid, ROUND_FLOOR),
        market_ask=_as_price(market_ask, ROUND_CEILING),
        bid=bid,
        ask=ask,
        spread_bps=0 if pegged else rules.spread_bps,
        pegged=pegged,
        depegged=depegged,
        verdicts=verdicts,
    )


def _as_price(value: Decimal, rounding: str) -> Decimal:
    return value.quantize(_QUANTUM, rounding=rounding)


def _no_rate_detail(symbol: Symbol, verdicts: Sequence[Verdict], accepted: int, needed: int) -> str:
    if not verdicts:
        return f"no {symbol} rate: no source was asked"
    reasons = "; ".join(
        f"{v.source}: {v.rejection}" + (f" ({v.detail})" if v.detail else "")
        for v in verdicts
        if not v.accepted
    )
    head = f"no {symbol} rate: {accepted} healthy quote(s), {needed} needed"
    return f"{head} — {reasons}" if reasons else head
