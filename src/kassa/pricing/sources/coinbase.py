"""Coinbase Exchange: one ticker request per product, one-minute candles.

Coinbase answers each product on its own URL (``/products/BTC-USD/ticker``), so the requests run
concurrently and a failure for one product costs only that symbol. The ticker's ``time`` is the
moment of the last trade; it stamps the quote because it is the only time Coinbase sends, and it
can only make a quote look older than it is, never fresher. Candles come as
``[time, low, high, open, close, volume]`` with JSON numbers, which `get_json` decodes to exact
decimals. Coinbase Exchange has not listed TRX-USD, so TRX is reported unsupported without a
request; should it list it, one line in `PRODUCTS` is the whole change.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from kassa.pricing.model import Candle, Quote, SourceError, Symbol
from kassa.pricing.sources.base import (
    SourceReport,
    epoch_time,
    get_json,
    make_quote,
    minute_start,
    price,
    quotes_per_symbol,
)

NAME = "coinbase"
BASE_URL = "https://api.exchange.coinbase.com"
PRODUCTS: dict[Symbol, str] = {
    Symbol.BTC: "BTC-USD",
    Symbol.ETH: "ETH-USD",
    Symbol.USDT: "USDT-USD",
}
CANDLE_SECONDS = 60


class CoinbaseSource:
    """Bid and ask from Coinbase Exchange's product tickers; candles from its product candles."""

    name = NAME

    def __init__(self, client: httpx.AsyncClient, base_url: str = BASE_URL) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")

    async def fetch(self, symbols: Collection[Symbol], now: datetime) -> SourceReport:
        return await quotes_per_symbol(NAME, symbols, self._quote)

    async def candle_at(self, symbol: Symbol, at: datetime) -> Candle | None:
        product = _product(symbol)
        opened = minute_start(at)
        # Coinbase includes both ends of the range, so this asks for at most two candles.
        rows = await get_json(
            self._client,
            NAME,
            f"{self._base_url}/products/{product}/candles",
            granularity=str(CANDLE_SECONDS),
            start=opened.isoformat(),
            end=(opened + timedelta(seconds=CANDLE_SECONDS)).isoformat(),
        )
        if not isinstance(rows, list):
            raise _bad_shape(f"{product} candles are {type(rows).__name__}, not a list")
        for row in rows:
            candle = _candle(symbol, row)
            if candle.opened_at <= at < candle.opened_at + timedelta(seconds=candle.seconds):
                return candle
        return None

    async def _quote(self, symbol: Symbol) -> Quote:
        product = _product(symbol)
        body = await get_json(self._client, NAME, f"{self._base_url}/products/{product}/ticker")
        return _ticker_quote(symbol, body)


def _product(symbol: Symbol) -> str:
    try:
        return PRODUCTS[symbol]
    except KeyError:
        raise SourceError(NAME, "unsupported_symbol", f"no {symbol}-USD product") from None


def _ticker_quote(symbol: Symbol, body: Any) -> Quote:
    if not isinstance(body, dict):
        raise _bad_shape(f"{symbol} ticker is {type(body).__name__}, not an object")
    if "message" in body and "bid" not in body:
        # Coinbase puts its complaints in ``message`` (``NotFound``, rate limits, maintenance).
        raise SourceError(NAME, "api_error", f"{symbol}: {body['message']}")
    try:
        bid, ask, time = body["bid"], body["ask"], body["time"]
    except KeyError as missing:
        raise _bad_shape(f"{symbol} ticker has no {missing}") from None
    return make_quote(
        NAME,
        symbol,
        price(NAME, bid, f"{symbol} bid"),
        price(NAME, ask, f"{symbol} ask"),
        _iso_time(time, f"{symbol} ticker time"),
    )


def _iso_time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise _bad_shape(f"{what} is {type(value).__name__}, not an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _bad_shape(f"{what} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        # A time without an offset would silently be read as local time.
        raise _bad_shape(f"{what} {value!r} has no UTC offset")
    return moment.astimezone(UTC)


def _candle(symbol: Symbol, row: Any) -> Candle:
    if not isinstance(row, list) or len(row) < 5:
        raise _bad_shape(f"{symbol} candle {row!r} is not [time, low, high, open, close, …]")
    time, low, high, open_, close = row[:5]
    return Candle(
        source=NAME,
        symbol=symbol,
        opened_at=epoch_time(NAME, time, f"{symbol} candle time"),
        seconds=CANDLE_SECONDS,
        open=price(NAME, open_, f"{symbol} candle open"),
        high=price(NAME, high, f"{symbol} candle high"),
        low=price(NAME, low, f"{symbol} candle low"),
        close=price(NAME, close, f"{symbol} candle close"),
    )


def _bad_shape(detail: str) -> SourceError:
    return SourceError(NAME, "bad_shape", detail)
