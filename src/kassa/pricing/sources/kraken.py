"""Kraken: every symbol in one ticker request, one-minute candles from OHLC.

Kraken wraps every answer as ``{"error": [...], "result": {...}}``; an ``E…`` entry in ``error``
is the exchange refusing (``EService:Unavailable``, ``EGeneral:Too many requests``), ``W…``
entries are only warnings. The result is keyed by Kraken's own pair names (``XXBTZUSD`` for the
``XBTUSD`` we ask for), so each symbol lists the names it may come back under. The ticker carries
no time, so quotes are stamped with the caller's ``now``.

Kraken refuses a whole multi-pair query when any one pair is unknown. So that one delisted pair
cannot blind us to the others, that refusal is retried one pair at a time and the unknown pair is
reported ``unsupported_symbol``. OHLC rows are ``[time, open, high, low, close, vwap, volume,
count]``; Kraken keeps only the latest 720 of them, so an older minute honestly has no candle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass
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
)

NAME = "kraken"
BASE_URL = "https://api.kraken.com"
CANDLE_SECONDS = 60
UNKNOWN_PAIR = "EQuery:Unknown asset pair"


@dataclass(frozen=True, slots=True)
class Pair:
    """A Kraken pair: the name we ask for and the names the result may key it by."""

    query: str
    result_keys: tuple[str, ...]


PAIRS: dict[Symbol, Pair] = {
    Symbol.BTC: Pair("XBTUSD", ("XXBTZUSD", "XBTUSD")),
    Symbol.ETH: Pair("ETHUSD", ("XETHZUSD", "ETHUSD")),
    Symbol.TRX: Pair("TRXUSD", ("TRXUSD",)),
    Symbol.USDT: Pair("USDTZUSD", ("USDTZUSD", "USDTUSD")),
}


class KrakenSource:
    """Bid and ask from Kraken's public Ticker; candles from its public OHLC."""

    name = NAME

    def __init__(self, client: httpx.AsyncClient, base_url: str = BASE_URL) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")

    async def fetch(self, symbols: Collection[Symbol], now: datetime) -> SourceReport:
        wanted = list(dict.fromkeys(symbols))
        outcomes: dict[Symbol, Quote | SourceError] = {
            symbol: SourceError(NAME, "unsupported_symbol", f"no {symbol}-USD pair")
            for symbol in wanted
            if symbol not in PAIRS
        }
        listed = [symbol for symbol in wanted if symbol in PAIRS]
        if listed:
            outcomes.update(await self._quotes(listed, now))
        return SourceReport(
            source=NAME,
            quotes=tuple(q for s in wanted if isinstance(q := outcomes[s], Quote)),
            errors={s: e for s in wanted if isinstance(e := outcomes[s], SourceError)},
        )

    async def candle_at(self, symbol: Symbol, at: datetime) -> Candle | None:
        pair = _pair(symbol)
        opened = minute_start(at)
        # Kraken does not say whether ``since`` is inclusive; one interval earlier covers both.
        since = int(opened.timestamp()) - CANDLE_SECONDS
        try:
            result = await self._public("OHLC", pair=pair.query, interval="1", since=str(since))
        except SourceError as error:
            if _unknown_pair(error):
                raise SourceError(NAME, "unsupported_symbol", error.detail) from error
            raise
        rows = _keyed(result, pair, symbol)
        if not isinstance(rows, list):
            raise _bad_shape(f"{symbol} OHLC is {type(rows).__name__}, not a list")
        for row in rows:
            candle = _candle(symbol, row)
            if candle.opened_at <= at < candle.opened_at + timedelta(seconds=candle.seconds):
                return candle
        return None

    async def _quotes(
        self, symbols: list[Symbol], now: datetime
    ) -> dict[Symbol, Quote | SourceError]:
        try:
            return await self._tickers(symbols, now)
        except SourceError as error:
            if not _unknown_pair(error):
                return dict.fromkeys(symbols, error)
            if len(symbols) == 1:
                return {symbols[0]: SourceError(NAME, "unsupported_symbol", error.detail)}
        # One unknown pair sinks the whole query: ask again pair by pair to find it.
        outcomes = await asyncio.gather(*(self._quotes([symbol], now) for symbol in symbols))
        return {symbol: outcome[symbol] for symbol, outcome in zip(symbols, outcomes, strict=True)}

    async def _tickers(
        self, symbols: list[Symbol], now: datetime
    ) -> dict[Symbol, Quote | SourceError]:
        """One Ticker request for ``symbols``; raises only when the whole request failed."""
        result = await self._public("Ticker", pair=",".join(PAIRS[s].query for s in symbols))
        outcomes: dict[Symbol, Quote | SourceError] = {}
        for symbol in symbols:
            try:
                outcomes[symbol] = _ticker_quote(symbol, _keyed(result, PAIRS[symbol], symbol), now)
            except SourceError as error:
                outcomes[symbol] = error
        return outcomes

    async def _public(self, method: str, **params: str) -> Mapping[str, Any]:
        body = await get_json(self._client, NAME, f"{self._base_url}/0/public/{method}", **params)
        if not isinstance(body, dict) or not isinstance(body.get("error", []), list):
            raise _bad_shape(f"{method} answer is not {{'error': [...], 'result': {{...}}}}")
        refusals = [str(entry) for entry in body.get("error", []) if not str(entry).startswith("W")]
        if refusals:
            raise SourceError(NAME, "api_error", f"{method}: {', '.join(refusals)}")
        result = body.get("result")
        if not isinstance(result, dict):
            raise _bad_shape(f"{method} answer has no result object")
        return result


def _unknown_pair(error: SourceError) -> bool:
    return error.reason == "api_error" and UNKNOWN_PAIR in error.detail


def _pair(symbol: Symbol) -> Pair:
    try:
        return PAIRS[symbol]
    except KeyError:
        raise SourceError(NAME, "unsupported_symbol", f"no {symbol}-USD pair") from None


def _keyed(result: Mapping[str, Any], pair: Pair, symbol: Symbol) -> Any:
    for key in pair.result_keys:
        if key in result:
            return result[key]
    raise _bad_shape(f"{symbol}: result has none of {', '.join(pair.result_keys)}")


def _ticker_quote(symbol: Symbol, ticker: Any, now: datetime) -> Quote:
    # ``a`` and ``b`` are [price, whole lot volume, lot volume] for the best ask and bid.
    try:
        ask, bid = ticker["a"][0], ticker["b"][0]
    except (KeyError, IndexError, TypeError):
        raise _bad_shape(f"{symbol} ticker has no a[0]/b[0] prices") from None
    return make_quote(
        NAME, symbol, price(NAME, bid, f"{symbol} bid"), price(NAME, ask, f"{symbol} ask"), now
    )


def _candle(symbol: Symbol, row: Any) -> Candle:
    if not isinstance(row, list) or len(row) < 5:
        raise _bad_shape(f"{symbol} OHLC row {row!r} is not [time, open, high, low, close, …]")
    time, open_, high, low, close = row[:5]
    return Candle(
        source=NAME,
        symbol=symbol,
        opened_at=epoch_time(NAME, time, f"{symbol} OHLC time"),
        seconds=CANDLE_SECONDS,
        open=price(NAME, open_, f"{symbol} OHLC open"),
        high=price(NAME, high, f"{symbol} OHLC high"),
        low=price(NAME, low, f"{symbol} OHLC low"),
        close=price(NAME, close, f"{symbol} OHLC close"),
    )


def _bad_shape(detail: str) -> SourceError:
    return SourceError(NAME, "bad_shape", detail)
