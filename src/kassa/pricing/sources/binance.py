"""Binance.US: one book-ticker request per USD market, one-minute klines.

Binance would answer several symbols in one request, but it rejects the whole request
(``{"code": -1121, "msg": "Invalid symbol."}``) when any one symbol is unknown, so each market is
asked on its own and concurrently: a delisting costs only that symbol. The book ticker carries
no time, so quotes are stamped with the caller's ``now``. Klines are ``[open time ms, open, high,
low, close, volume, close time ms, …]``. Binance.US delisted TRX in April 2023, so TRX is
reported unsupported without a request. (Binance.com refuses US-hosted servers; this is .US.)
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
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

NAME = "binance"
BASE_URL = "https://api.binance.us"
MARKETS: dict[Symbol, str] = {
    Symbol.BTC: "BTCUSD",
    Symbol.ETH: "ETHUSD",
    Symbol.USDT: "USDTUSD",
}
CANDLE_SECONDS = 60


class BinanceSource:
    """Bid and ask from Binance.US's book tickers; candles from its klines."""

    name = NAME

    def __init__(self, client: httpx.AsyncClient, base_url: str = BASE_URL) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")

    async def fetch(self, symbols: Collection[Symbol], now: datetime) -> SourceReport:
        return await quotes_per_symbol(NAME, symbols, lambda symbol: self._quote(symbol, now))

    async def candle_at(self, symbol: Symbol, at: datetime) -> Candle | None:
        market = _market(symbol)
        opened = minute_start(at)
        # ``startTime`` with ``limit=1`` yields the first kline opening at or after it, which is
        # a later minute when the wanted one has no kline: hence the containment check below.
        rows = await get_json(
            self._client,
            NAME,
            f"{self._base_url}/api/v3/klines",
            symbol=market,
            interval="1m",
            startTime=str(int(opened.timestamp()) * 1000),
            limit="1",
        )
        _refuse_on_error(symbol, rows)
        if not isinstance(rows, list):
            raise _bad_shape(f"{symbol} klines are {type(rows).__name__}, not a list")
        for row in rows:
            candle = _candle(symbol, row)
            if candle.opened_at <= at < candle.opened_at + timedelta(seconds=candle.seconds):
                return candle
        return None

    async def _quote(self, symbol: Symbol, now: datetime) -> Quote:
        market = _market(symbol)
        body = await get_json(
            self._client, NAME, f"{self._base_url}/api/v3/ticker/bookTicker", symbol=market
        )
        return _book_quote(symbol, market, body, now)


def _market(symbol: Symbol) -> str:
    try:
        return MARKETS[symbol]
    except KeyError:
        raise SourceError(NAME, "unsupported_symbol", f"no {symbol}USD market") from None


def _refuse_on_error(symbol: Symbol, body: Any) -> None:
    # Binance's refusals are ``{"code": <negative int>, "msg": …}``, normally with a 4xx status.
    if isinstance(body, dict) and "code" in body and "msg" in body:
        raise SourceError(NAME, "api_error", f"{symbol}: {body['msg']} ({body['code']})")


def _book_quote(symbol: Symbol, market: str, body: Any, now: datetime) -> Quote:
    _refuse_on_error(symbol, body)
    if not isinstance(body, dict):
        raise _bad_shape(f"{symbol} book ticker is {type(body).__name__}, not an object")
    try:
        answered, bid, ask = body["symbol"], body["bidPrice"], body["askPrice"]
    except KeyError as missing:
        raise _bad_shape(f"{symbol} book ticker has no {missing}") from None
    if answered != market:
        raise _bad_shape(f"asked for {market}, got the book ticker of {answered!r}")
    return make_quote(
        NAME, symbol, price(NAME, bid, f"{symbol} bid"), price(NAME, ask, f"{symbol} ask"), now
    )


def _candle(symbol: Symbol, row: Any) -> Candle:
    if not isinstance(row, list) or len(row) < 5:
        raise _bad_shape(f"{symbol} kline {row!r} is not [open time, open, high, low, close, …]")
    open_time, open_, high, low, close = row[:5]
    return Candle(
        source=NAME,
        symbol=symbol,
        opened_at=epoch_time(NAME, open_time, f"{symbol} kline open time", millis=True),
        seconds=CANDLE_SECONDS,
        open=price(NAME, open_, f"{symbol} kline open"),
        high=price(NAME, high, f"{symbol} kline high"),
        low=price(NAME, low, f"{symbol} kline low"),
        close=price(NAME, close, f"{symbol} kline close"),
    )


def _bad_shape(detail: str) -> SourceError:
    return SourceError(NAME, "bad_shape", detail)
