"""GET /v1/rates and /v1/rates/{asset}: the aggregated USD rates and the quotes behind them.

Any valid key may read rates. Prices are decimal strings of whole USD per whole coin. Each rate
lists every source answer it was built from — accepted, rejected (stale, outlier, …) or failed —
so a customer's valuation can be explained quote by quote. No rate is answered with 503
`no_rate`, never with a stale or guessed one.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel

from kassa.api.auth import AnyKey
from kassa.api.context import Ctx
from kassa.api.openapi import problems_for
from kassa.clock import parse_time
from kassa.errors import InvalidRequest
from kassa.pricing.errors import NoRate
from kassa.pricing.history import RateSample, StoredQuote
from kassa.pricing.model import Symbol, UnknownSymbol, price_text, symbol_of

router = APIRouter(prefix="/v1", tags=["rates"])


class UnknownSymbolError(InvalidRequest):
    code = "unknown_symbol"
    title = "Unknown asset"


class QuoteOut(BaseModel):
    source: str
    bid: str | None
    ask: str | None
    observed_at: datetime | None
    accepted: bool
    rejection: str | None
    detail: str | None

    @classmethod
    def of(cls, quote: StoredQuote) -> QuoteOut:
        return cls(
            source=quote.source,
            bid=None if quote.bid is None else price_text(quote.bid),
            ask=None if quote.ask is None else price_text(quote.ask),
            observed_at=quote.observed_at,
            accepted=quote.accepted,
            rejection=quote.rejection,
            detail=quote.detail,
        )


class RateOut(BaseModel):
    symbol: str
    sample_id: int
    kind: str
    sampled_at: datetime
    bid: str
    """Deposits are valued at the bid (USD per coin)."""
    ask: str
    """Refunds and payouts are priced at the ask (USD per coin)."""
    market_bid: str
    market_ask: str
    spread_bps: int
    pegged: bool
    depegged: bool
    sources: list[str]
    quotes: list[QuoteOut]

    @classmethod
    def of(cls, sample: RateSample) -> RateOut:
        return cls(
            symbol=sample.symbol.value,
            sample_id=sample.id,
            kind=sample.kind,
            sampled_at=sample.sampled_at,
            bid=price_text(sample.bid),
            ask=price_text(sample.ask),
            market_bid=price_text(sample.market_bid),
            market_ask=price_text(sample.market_ask),
            spread_bps=sample.spread_bps,
            pegged=sample.pegged,
            depegged=sample.depegged,
            sources=list(sample.sources),
            quotes=[QuoteOut.of(q) for q in sample.quotes],
        )


class UnavailableOut(BaseModel):
    symbol: str
    reason: str


class RatesOut(BaseModel):
    rates: list[RateOut]
    unavailable: list[UnavailableOut]


def parse_symbol(text: str) -> Symbol:
    try:
        return symbol_of(text)
    except UnknownSymbol as exc:
        raise UnknownSymbolError(str(exc)) from None


@router.get(
    "/rates",
    description=(
        "Every current USD rate with the quotes behind it, and which rates are unavailable."
    ),
    responses=problems_for(),
)
def current_rates(ctx: Ctx, _caller: AnyKey) -> RatesOut:
    rates: list[RateOut] = []
    unavailable: list[UnavailableOut] = []
    with ctx.database.transaction() as conn:
        now = ctx.clock.now(conn)
        for symbol in Symbol:
            try:
                rates.append(RateOut.of(ctx.pricing.current(conn, symbol, now)))
            except NoRate as exc:
                unavailable.append(UnavailableOut(symbol=symbol.value, reason=exc.detail))
    return RatesOut(rates=rates, unavailable=unavailable)


@router.get(
    "/rates/{asset}",
    description=("One asset's USD rate, now or at a past time, with the quotes behind it."),
    responses=problems_for("unknown_symbol", "no_rate", "invalid_time"),
)
def rate(
    asset: str,
    ctx: Ctx,
    _caller: AnyKey,
    at: str | None = Query(default=None, description="ISO 8601 time with offset; default now"),
) -> RateOut:
    symbol = parse_symbol(asset)
    if at is None:
        with ctx.database.transaction() as conn:
            return RateOut.of(ctx.pricing.current(conn, symbol, ctx.clock.now(conn)))
    return RateOut.of(ctx.pricing.rate_at(symbol, parse_time(at)))
