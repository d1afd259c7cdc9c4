"""CoinGecko: spot prices for every symbol in one ``/simple/price`` request.

CoinGecko is an aggregator, not a market: it publishes one price per coin, so the quote's bid and
ask are both that price, and it offers no one-minute candles. Prices are JSON numbers, which
`get_json` decodes to exact decimals. ``last_updated_at`` (epoch seconds) stamps the quote; it is
asked for and required, because CoinGecko's cache can lag by minutes and a price without its age
would pass for a fresh one. Unknown coin ids are silently left out of the answer, so a missing id
means CoinGecko does not list the symbol. Refusals come as ``{"status": {"error_code": …}}``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import httpx

from kassa.pricing.model import Quote, SourceError, Symbol
from kassa.pricing.sources.base import (
    SourceReport,
    epoch_time,
    get_json,
    make_quote,
    price,
)

NAME = "coingecko"
BASE_URL = "https://api.coingecko.com"
COIN_IDS: dict[Symbol, str] = {
    Symbol.BTC: "bitcoin",
    Symbol.ETH: "ethereum",
    Symbol.TRX: "tron",
    Symbol.USDT: "tether",
}


class CoinGeckoSource:
    """Spot prices from CoinGecko's public ``/api/v3/simple/price``."""

    name = NAME

    def __init__(self, client: httpx.AsyncClient, base_url: str = BASE_URL) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")

    async def fetch(self, symbols: Collection[Symbol], now: datetime) -> SourceReport:
        wanted = list(dict.fromkeys(symbols))
        outcomes: dict[Symbol, Quote | SourceError] = {
            symbol: SourceError(NAME, "unsupported_symbol", f"no coin id for {symbol}")
            for symbol in wanted
            if symbol not in COIN_IDS
        }
        listed = [symbol for symbol in wanted if symbol in COIN_IDS]
        if listed:
            try:
                body = await get_json(
                    self._client,
                    NAME,
                    f"{self._base_url}/api/v3/simple/price",
                    ids=",".join(COIN_IDS[symbol] for symbol in listed),
                    vs_currencies="usd",
                    include_last_updated_at="true",
                )
                _refuse_on_error(body)
            except SourceError as error:
                outcomes.update(dict.fromkeys(listed, error))
            else:
                for symbol in listed:
                    try:
                        outcomes[symbol] = _quote(symbol, body)
                    except SourceError as error:
                        outcomes[symbol] = error
        return SourceReport(
            source=NAME,
            quotes=tuple(q for s in wanted if isinstance(q := outcomes[s], Quote)),
            errors={s: e for s in wanted if isinstance(e := outcomes[s], SourceError)},
        )


def _refuse_on_error(body: Any) -> None:
    if not isinstance(body, dict):
        raise SourceError(NAME, "bad_shape", f"answer is {type(body).__name__}, not an object")
    status = body.get("status")
    if isinstance(status, dict) and "error_code" in status:
        message = status.get("error_message", "no message")
        raise SourceError(NAME, "api_error", f"{status['error_code']}: {message}")
    if "error" in body:
        raise SourceError(NAME, "api_error", str(body["error"]))


def _quote(symbol: Symbol, body: dict[str, Any]) -> Quote:
    coin = COIN_IDS[symbol]
    if coin not in body:
        raise SourceError(NAME, "unsupported_symbol", f"no {coin!r} in the answer")
    entry = body[coin]
    if not isinstance(entry, dict):
        raise SourceError(NAME, "bad_shape", f"{coin} is {type(entry).__name__}, not an object")
    try:
        spot, updated = entry["usd"], entry["last_updated_at"]
    except KeyError as missing:
        raise SourceError(NAME, "bad_shape", f"{coin} has no {missing}") from None
    value = price(NAME, spot, f"{symbol} usd")
    return make_quote(
        NAME, symbol, value, value, epoch_time(NAME, updated, f"{coin} last_updated_at")
    )
