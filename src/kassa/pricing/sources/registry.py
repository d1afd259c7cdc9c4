"""The HTTP rate sources by configuration name.

Configuration names sources (``KASSA_PRICE_SOURCES=coinbase,kraken,…``); this is the one place
that turns a name into a source sharing the caller's ``httpx.AsyncClient`` (its timeouts, its
connection pool). The configured ``static`` source is built elsewhere, from its prices.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from kassa.pricing.sources import SOURCE_NAMES
from kassa.pricing.sources.base import RateSource
from kassa.pricing.sources.binance import BinanceSource
from kassa.pricing.sources.bitstamp import BitstampSource
from kassa.pricing.sources.coinbase import CoinbaseSource
from kassa.pricing.sources.coingecko import CoinGeckoSource
from kassa.pricing.sources.kraken import KrakenSource

_BUILDERS: dict[str, Callable[[httpx.AsyncClient], RateSource]] = {
    "coinbase": CoinbaseSource,
    "kraken": KrakenSource,
    "bitstamp": BitstampSource,
    "binance": BinanceSource,
    "coingecko": CoinGeckoSource,
}


class UnknownSource(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown price source {name!r}; the HTTP sources are {', '.join(SOURCE_NAMES)}"
        )
        self.name = name


def build_source(name: str, client: httpx.AsyncClient) -> RateSource:
    """The source called ``name``, making its requests through ``client``."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise UnknownSource(name) from None
    return builder(client)
