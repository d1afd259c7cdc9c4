"""The `static` source: rates from configuration, for the demo and for tests.

It answers like any other source (a quote per symbol, bid = ask = the configured rate, stamped
with the time asked) and goes through the same aggregation, so a demo deposit is valued by the
same code path as a production one. A symbol without a configured rate is `unsupported_symbol`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from decimal import Decimal

from kassa.pricing.model import Quote, SourceError, Symbol
from kassa.pricing.sources.base import SourceReport


class StaticSource:
    def __init__(self, rates: Mapping[Symbol, Decimal], name: str = "static") -> None:
        self._rates = dict(rates)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def fetch(self, symbols: Collection[Symbol], now: datetime) -> SourceReport:
        quotes: list[Quote] = []
        errors: dict[Symbol, SourceError] = {}
        for symbol in symbols:
            rate = self._rates.get(symbol)
            if rate is None:
                errors[symbol] = SourceError(self.name, "unsupported_symbol", f"no {symbol} rate")
            else:
                quotes.append(Quote(self.name, symbol, rate, rate, now))
        return SourceReport(self.name, tuple(quotes), errors)
