"""The `RateSource` port and the helpers every HTTP source shares.

A source is one method: ``fetch(symbols)`` returns a `SourceReport` — the quotes it could get and,
per symbol, why it could not. Sources never raise for a bad price or a failed request; one bad
exchange must not hide the others. Historical candles are a second, optional port
(`CandleSource`). Every HTTP source takes an ``httpx.AsyncClient`` so tests hand it a
``MockTransport`` with recorded bodies and production hands it a client with timeouts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, runtime_checkable

import httpx

from kassa.pricing.model import Candle, Quote, SourceError, Symbol


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What one fetch from one source produced."""

    source: str
    quotes: tuple[Quote, ...] = ()
    errors: Mapping[Symbol, SourceError] = field(default_factory=dict)


@runtime_checkable
class RateSource(Protocol):
    """A source of current USD prices."""

    @property
    def name(self) -> str: ...

    async def fetch(self, symbols: Collection[Symbol], now: datetime) -> SourceReport:
        """Current quotes for ``symbols``; ``now`` stamps quotes whose source sends no time."""
        ...


@runtime_checkable
class CandleSource(Protocol):
    """A source that can say what a price was in the past."""

    @property
    def name(self) -> str: ...

    async def candle_at(self, symbol: Symbol, at: datetime) -> Candle | None:
        """The one-minute (or finest offered) candle containing ``at``, or None if it has none."""
        ...


async def get_json(client: httpx.AsyncClient, source: str, url: str, **params: str) -> Any:
    """GET ``url`` and decode JSON with exact decimals, turning every failure into SourceError."""
    try:
        response = await client.get(url, params=params or None)
    except httpx.TimeoutException as exc:
        raise SourceError(source, "timeout", f"{url}: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise SourceError(source, "transport", f"{url}: {exc}") from exc
    if response.status_code != 200:
        raise SourceError(source, "http_status", f"{url}: HTTP {response.status_code}")
    try:
        # Floats never enter: JSON numbers become Decimal, exactly as written.
        return json.loads(response.content, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = response.headers.get("content-type", "unknown content type")
        raise SourceError(source, "not_json", f"{url}: body is not JSON ({kind})") from exc


def price(source: str, value: Any, what: str) -> Decimal:
    """A strictly positive, finite decimal price from a JSON string or number."""
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int):
        raise SourceError(source, "bad_shape", f"{what} is {type(value).__name__}, not a price")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise SourceError(source, "bad_price", f"{what} {value!r} is not a number") from exc
    if not number.is_finite() or number <= 0:
        raise SourceError(source, "bad_price", f"{what} {value!r} is not a positive price")
    return number


def make_quote(
    source: str, symbol: Symbol, bid: Decimal, ask: Decimal, observed_at: datetime
) -> Quote:
    """A quote after the sanity checks every source shares (bid must not exceed ask)."""
    if bid > ask:
        raise SourceError(source, "bad_price", f"{symbol}: bid {bid} is above ask {ask}")
    return Quote(source=source, symbol=symbol, bid=bid, ask=ask, observed_at=observed_at)


async def quotes_per_symbol(
    source: str, symbols: Collection[Symbol], quote: Callable[[Symbol], Awaitable[Quote]]
) -> SourceReport:
    """Ask for each symbol at once (one request each); a symbol that fails keeps its error and
    costs the others nothing."""
    wanted = list(dict.fromkeys(symbols))

    async def attempt(symbol: Symbol) -> Quote | SourceError:
        try:
            return await quote(symbol)
        except SourceError as error:
            return error

    outcomes = await asyncio.gather(*(attempt(symbol) for symbol in wanted))
    return SourceReport(
        source=source,
        quotes=tuple(outcome for outcome in outcomes if isinstance(outcome, Quote)),
        errors={
            symbol: outcome
            for symbol, outcome in zip(wanted, outcomes, strict=True)
            if isinstance(outcome, SourceError)
        },
    )


def epoch_time(
    source: str, value: Any, what: str, *, millis: bool = False, digit_strings: bool = False
) -> datetime:
    """A UTC time from whole epoch seconds (or milliseconds) sent as a JSON integer — or, with
    ``digit_strings``, as a string of digits. The decoder hands integers over as Decimal; a
    fraction means a wrong field, so it is refused rather than rounded."""
    unit = "epoch milliseconds" if millis else "epoch seconds"
    problem = SourceError(source, "bad_shape", f"{what} {value!r} is not {unit}")
    if digit_strings and isinstance(value, str) and not value.isdigit():
        raise problem
    allowed = (str, Decimal, int) if digit_strings else (Decimal, int)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise problem
    try:
        number = Decimal(value)
        whole = int(number)
        if whole != number:
            raise ValueError(value)
        if millis:
            return datetime.fromtimestamp(whole // 1000, UTC) + timedelta(milliseconds=whole % 1000)
        return datetime.fromtimestamp(whole, UTC)
    except (ValueError, ArithmeticError, OSError):
        raise problem from None


def minute_start(at: datetime) -> datetime:
    """The start of the UTC minute containing ``at`` (one-minute candles open there)."""
    if at.tzinfo is None:
        raise ValueError(f"candle_at needs a timezone-aware time, not {at!r}")
    return at.astimezone(UTC).replace(second=0, microsecond=0)
