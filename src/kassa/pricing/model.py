"""The pricing vocabulary: priced symbols, quotes from sources, and the errors sources report.

A *quote* is one source's bid and ask for one symbol against USD, as decimals of whole USD per
whole coin (``Decimal("97123.45")`` USD per BTC). Decimals only exist here, at the edge where
prices enter Kassa; the moment a rate touches money it becomes an exact integer ratio
(`Decimal.as_integer_ratio`) for `kassa.money.convert_down` / `convert_up`.

`Symbol`, and which symbol prices an asset, are asset facts (`kassa.assets`), re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from kassa.assets import Symbol, on_chain, price_symbol
from kassa.money import AssetCode

__all__ = ["Candle", "Quote", "SourceError", "Symbol", "UnknownSymbol", "price_text", "symbol_of"]


def symbol_of(code: AssetCode | str) -> Symbol:
    """The market symbol that prices `code` (an asset code such as ``USDT-TRC20`` or a symbol)."""
    text = str(code)
    if on_chain(text):
        return price_symbol(text)
    try:
        return Symbol(text)
    except ValueError:
        raise UnknownSymbol(text) from None


def price_text(value: Decimal) -> str:
    """A price as a plain decimal string without trailing zeros or exponent (``60000``)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class UnknownSymbol(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(f"{text!r} is not a priced asset (BTC, ETH, TRX, USDT, USDT-ERC20, …)")
        self.text = text


@dataclass(frozen=True, slots=True)
class Quote:
    """One source's price for one symbol in USD at one moment.

    ``bid`` and ``ask`` are whole USD per whole coin. Sources that publish only a last-trade or
    spot price report it as both bid and ask. ``observed_at`` is the source's own timestamp for
    the price when it sends one, else the moment the response arrived (always timezone-aware UTC).
    """

    source: str
    symbol: Symbol
    bid: Decimal
    ask: Decimal
    observed_at: datetime

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class Candle:
    """One historical OHLC candle in USD from a source that offers candles."""

    source: str
    symbol: Symbol
    opened_at: datetime
    seconds: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


class SourceError(Exception):
    """A source could not give a usable quote; ``reason`` is a short machine-readable word.

    Reasons used by the sources: ``http_status``, ``timeout``, ``transport``, ``not_json``,
    ``bad_shape``, ``bad_price`` (zero, negative, non-finite or bid above ask),
    ``unsupported_symbol``, ``api_error`` (the source said so in its body).
    """

    def __init__(self, source: str, reason: str, detail: str) -> None:
        super().__init__(f"{source}: {reason}: {detail}")
        self.source = source
        self.reason = reason
        self.detail = detail
