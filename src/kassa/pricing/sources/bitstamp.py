"""Bitstamp: one ticker request per pair, one-minute candles from OHLC.

Bitstamp answers each pair on its own URL (``/api/v2/ticker/btcusd/``), so the requests run
concurrently and a failure for one pair costs only that symbol. Every figure is a JSON string,
including ``timestamp`` (epoch seconds), which stamps the quote. Bitstamp refuses with
``{"status": "error", "reason": …, "code": …}`` (older endpoints: ``{"error": …}``). It has not
listed TRX, so TRX is reported unsupported without a request.
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

NAME = "bitstamp"
BASE_URL = "https://www.bitstamp.net"
PAIRS: dict[Symbol, str] = {
    Symbol.BTC: "btcusd",
    Symbol.ETH: "ethusd",
    Symbol.USDT: "usdtusd",
}
CANDLE_SECONDS = 60


class BitstampSource:
    """Bid and ask from Bitstamp's v2 tickers; candles from its v2 OHLC."""

    name = NAME

    def __init__(self, client: httpx.AsyncClient, base_url: str = BASE_URL) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")

    async def fetch(self, symbols: Collection[Symbol], now: datetime) -> SourceReport:
        return await quotes_per_symbol(NAME, symbols, self._quote)

    async def candle_at(self, symbol: Symbol, at: datetime) -> Candle | None:
        pair = _pair(symbol)
        opened = minute_start(at)
        body = await get_json(
            self._client,
            NAME,
            f"{self._base_url}/api/v2/ohlc/{pair}/",
            step=str(CANDLE_SECONDS),
            limit="1",
            start=str(int(opened.timestamp())),
        )
        _refuse_on_error(symbol, body)
        try:
            rows = body["data"]["ohlc"]
        except (KeyError, TypeError):
            raise _bad_shape(f"{symbol} OHLC has no data.ohlc") from None
        if not isinstance(rows, list):
            raise _bad_shape(f"{symbol} OHLC data.ohlc is {type(rows).__name__}, not a list")
        for row in rows:
            candle = _candle(symbol, row)
            # With ``start`` and ``limit=1`` Bitstamp may answer with a later minute when the
            # wanted one is missing; only a candle that contains ``at`` is an answer.
            if candle.opened_at <= at < candle.opened_at + timedelta(seconds=candle.seconds):
                return candle
        return None

    async def _quote(self, symbol: Symbol) -> Quote:
        pair = _pair(symbol)
        body = await get_json(self._client, NAME, f"{self._base_url}/api/v2/ticker/{pair}/")
        return _ticker_quote(symbol, body)


def _pair(symbol: Symbol) -> str:
    try:
        return PAIRS[symbol]
    except KeyError:
        raise SourceError(NAME, "unsupported_symbol", f"no {symbol}-USD market") from None


def _refuse_on_error(symbol: Symbol, body: Any) -> None:
    if not isinstance(body, dict):
        raise _bad_shape(f"{symbol} answer is {type(body).__name__}, not an object")
    if body.get("status") == "error" or "error" in body:
        reason = body.get("reason", body.get("error"))
        code = body.get("code", "no code")
        raise SourceError(NAME, "api_error", f"{symbol}: {reason} ({code})")


def _ticker_quote(symbol: Symbol, body: Any) -> Quote:
    _refuse_on_error(symbol, body)
    try:
        bid, ask, timestamp = body["bid"], body["ask"], body["timestamp"]
    except KeyError as missing:
        raise _bad_shape(f"{symbol} ticker has no {missing}") from None
    return make_quote(
        NAME,
        symbol,
        price(NAME, bid, f"{symbol} bid"),
        price(NAME, ask, f"{symbol} ask"),
        epoch_time(NAME, timestamp, f"{symbol} ticker timestamp", digit_strings=True),
    )


def _candle(symbol: Symbol, row: Any) -> Candle:
    try:
        timestamp, open_, high, low, close = (
            row["timestamp"],
            row["open"],
            row["high"],
            row["low"],
            row["close"],
        )
    except (KeyError, TypeError):
        raise _bad_shape(f"{symbol} OHLC row {row!r} lacks timestamp/open/high/low/close") from None
    return Candle(
        source=NAME,
        symbol=symbol,
        opened_at=epoch_time(NAME, timestamp, f"{symbol} OHLC timestamp", digit_strings=True),
        seconds=CANDLE_SECONDS,
        open=price(NAME, open_, f"{symbol} OHLC open"),
        high=price(NAME, high, f"{symbol} OHLC high"),
        low=price(NAME, low, f"{symbol} OHLC low"),
        close=price(NAME, close, f"{symbol} OHLC close"),
    )


def _bad_shape(detail: str) -> SourceError:
    return SourceError(NAME, "bad_shape", detail)
