"""The pricing service: refresh rates from the sources, answer "the rate now / at T", lock rates.

Network and database never overlap: quotes are fetched with no transaction
open, then stored in one short transaction. Fetching is async (every source at once, each under
its own timeout); the public methods are synchronous so routes, the CLI and worker threads can
call them directly.

Fallback order: every source in ``sources`` is asked on each refresh; for a symbol that still
lacks ``min_sources`` accepted quotes, the ``fallback_sources`` are asked one at a time, in
order, until it has them or the list runs out. When no rate can be had, callers get `NoRate` —
never a stale or made-up rate; a deposit waiting for a rate simply asks again later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import Connection

from kassa.clock import Clock
from kassa.db import Database
from kassa.events import operational
from kassa.money import AssetCode
from kassa.pricing import history, market
from kassa.pricing.aggregate import Aggregate, Rules, aggregate, judge, price_from_market
from kassa.pricing.errors import NoRate
from kassa.pricing.history import RateSample
from kassa.pricing.locks import RateLock, Side, get_lock_by_purpose, lock_rate
from kassa.pricing.model import Candle, Quote, SourceError, Symbol, price_text, symbol_of
from kassa.pricing.settings import PricingSettings
from kassa.pricing.sources.base import CandleSource, RateSource, SourceReport
from kassa.pricing.sources.static import StaticSource
from kassa.telemetry.metrics import RATE_SOURCE_FAILURES

log = logging.getLogger(__name__)

ALL_SYMBOLS: tuple[Symbol, ...] = tuple(Symbol)
USER_AGENT = "kassa-pricing/0.1"


@dataclass(frozen=True, slots=True)
class SourceSet:
    primary: tuple[RateSource, ...]
    fallback: tuple[RateSource, ...] = ()
    candles: tuple[CandleSource, ...] = ()


SourceFactory = Callable[[httpx.AsyncClient], SourceSet]
"""Builds the sources around one HTTP client (a client lives for one event loop)."""


def sources_from_settings(
    settings: PricingSettings,
    overrides: Callable[[], Mapping[Symbol, Decimal]] = dict,
) -> SourceFactory:
    """The configured sources by name; ``static`` serves `settings.static_rates`, each replaced
    by its devnet override when one was set (`kassa.pricing.market`)."""
    from kassa.pricing.sources.registry import build_source

    def one(name: str, client: httpx.AsyncClient) -> RateSource:
        if name == "static":
            return StaticSource({**settings.static_rates, **overrides()})
        return build_source(name, client)

    def factory(client: httpx.AsyncClient) -> SourceSet:
        candles: list[CandleSource] = []
        for name in settings.candle_sources:
            source = one(name, client)
            if not isinstance(source, CandleSource):
                raise ValueError(f"rate source {name!r} offers no historical candles")
            candles.append(source)
        return SourceSet(
            primary=tuple(one(n, client) for n in settings.sources),
            fallback=tuple(one(n, client) for n in settings.fallback_sources),
            candles=tuple(candles),
        )

    return factory


def rules_of(settings: PricingSettings) -> Rules:
    return Rules(
        min_sources=settings.min_sources,
        max_quote_age=timedelta(seconds=settings.max_quote_age_seconds),
        outlier_band_bps=settings.outlier_band_bps,
        spread_bps=settings.spread_bps,
        usdt_peg_band_bps=settings.usdt_peg_band_bps,
    )


@dataclass(slots=True)
class Collected:
    """Per symbol, the aggregate or the reason there is none."""

    rates: dict[Symbol, Aggregate] = field(default_factory=dict)
    missing: dict[Symbol, NoRate] = field(default_factory=dict)


async def _fetch_safely(
    source: RateSource, symbols: Collection[Symbol], now: datetime, timeout: float
) -> SourceReport:
    """A source's report; a timeout or a bug in one source becomes its failure, not ours."""
    try:
        return await asyncio.wait_for(source.fetch(symbols, now), timeout)
    except TimeoutError:
        reason, detail = "timeout", f"no answer within {timeout} s"
    except Exception as exc:  # one broken source must not stop the others
        log.exception("rate source %s failed", source.name)
        reason, detail = "error", f"{type(exc).__name__}: {exc}"
    return SourceReport(
        source.name, (), {s: SourceError(source.name, reason, detail) for s in symbols}
    )


async def collect(
    sources: SourceSet,
    symbols: Collection[Symbol],
    now: datetime,
    rules: Rules,
    timeout: float,
) -> Collected:
    """Ask the primary sources at once, then fallbacks in order for symbols still without a rate."""
    quotes: dict[Symbol, list[Quote]] = {s: [] for s in symbols}
    failures: dict[Symbol, list[SourceError]] = {s: [] for s in symbols}

    def take(report: SourceReport) -> None:
        for quote in report.quotes:
            if quote.symbol in quotes:
                quotes[quote.symbol].append(quote)
        for symbol, error in report.errors.items():
            RATE_SOURCE_FAILURES.labels(error.source, symbol, error.reason).inc()
            if symbol in failures:
                failures[symbol].append(error)

    reports = await asyncio.gather(
        *(_fetch_safely(s, symbols, now, timeout) for s in sources.primary)
    )
    for report in reports:
        take(report)
    fallbacks = list(sources.fallback)
    result = Collected()
    pending = list(symbols)
    while True:
        still: list[Symbol] = []
        for symbol in pending:
            try:
                result.rates[symbol] = aggregate(
                    symbol, quotes[symbol], failures[symbol], now, rules
                )
                result.missing.pop(symbol, None)
            except NoRate as exc:
                result.missing[symbol] = exc
                still.append(symbol)
        if not still or not fallbacks:
            return result
        source = fallbacks.pop(0)
        log.info("asking fallback source %s for %s", source.name, ", ".join(still))
        take(await _fetch_safely(source, still, now, timeout))
        pending = still


async def candle_rate(
    sources: Iterable[CandleSource], symbol: Symbol, at: datetime, rules: Rules, timeout: float
) -> Aggregate:
    """A historical rate at `at` from the candles that contain it (median close)."""
    quotes: list[Quote] = []
    failures: list[SourceError] = []
    for source in sources:
        try:
            candle: Candle | None = await asyncio.wait_for(source.candle_at(symbol, at), timeout)
        except TimeoutError:
            failures.append(SourceError(source.name, "timeout", f"no answer within {timeout} s"))
            continue
        except SourceError as exc:
            failures.append(exc)
            continue
        except Exception as exc:
            log.exception("candle source %s failed", source.name)
            failures.append(SourceError(source.name, "error", f"{type(exc).__name__}: {exc}"))
            continue
        if candle is None:
            failures.append(SourceError(source.name, "no_candle", f"no {symbol} candle at {at}"))
            continue
        # The candle contains `at`, so its close is a quote for that moment.
        quotes.append(Quote(source.name, symbol, candle.close, candle.close, at))
    candle_rules = Rules(
        min_sources=1,
        max_quote_age=rules.max_quote_age,
        outlier_band_bps=rules.outlier_band_bps,
        spread_bps=rules.spread_bps,
        usdt_peg_band_bps=rules.usdt_peg_band_bps,
    )
    verdicts = judge(symbol, quotes, failures, at, candle_rules)
    accepted = [v.quote for v in verdicts if v.accepted and v.quote is not None]
    if not accepted:
        return aggregate(symbol, quotes, failures, at, candle_rules)  # raises NoRate with reasons
    closes = sorted(q.bid for q in accepted)
    middle = len(closes) // 2
    # An even count takes the lower and upper middles for bid and ask: no averaging needed.
    bid = closes[middle - 1] if len(closes) % 2 == 0 else closes[middle]
    ask = closes[middle]
    return price_from_market(symbol, at, bid, ask, verdicts, candle_rules)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    samples: dict[Symbol, RateSample]
    missing: dict[Symbol, str]


def _note_episode(
    conn: Connection,
    symbol: Symbol,
    sample: RateSample | None,
    missing: NoRate | None,
    at: datetime,
) -> None:
    """``rate.unavailable`` / ``rate.depegged`` once per episode, ``rate.recovered`` after."""
    if sample is None:
        reason = missing.detail if missing is not None else "no rate was aggregated"
        trouble: str | None = "rate.unavailable"
        sources: list[str] = []
        bid = ask = None
    else:
        bid, ask, sources = price_text(sample.bid), price_text(sample.ask), list(sample.sources)
        trouble = "rate.depegged" if sample.depegged else None
        reason = (
            f"{symbol} trades at {price_text(sample.market_bid)}–{price_text(sample.market_ask)} "
            "USD, outside its peg band"
            if sample.depegged
            else f"{symbol} has a usable rate again"
        )
    operational.settle(
        conn,
        subject_kind="rate",
        subject_id=symbol.value,
        trouble=trouble,
        recovered="rate.recovered",
        data={
            "asset": symbol.value,
            "source": "live",
            "sources": sources,
            "bid": bid,
            "ask": ask,
            "reason": reason,
        },
        at=at,
    )


@dataclass(frozen=True, slots=True)
class RateBook:
    """Stored samples around a batch of payment times (`PricingService.book`)."""

    windows: Mapping[Symbol, history.SampleWindow]
    tolerance: timedelta
    now: datetime

    def sample(self, asset: AssetCode, at: datetime) -> RateSample | None:
        """The stored sample `PricingService.rate_at` would price `at` with; None when only
        `rate_at` can answer (a candle lookup, or a `NoRate` that explains why)."""
        window = self.windows.get(symbol_of(asset))
        if window is None or at > self.now + self.tolerance:
            return None
        return window.nearest(at, self.tolerance)


class PricingService:
    """Rates for Kassa: refresh, current, at-time and locks, over one database and clock."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        settings: PricingSettings,
        *,
        source_factory: SourceFactory | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.settings = settings
        self.rules = rules_of(settings)
        self._overrides: Mapping[Symbol, Decimal] = {}
        """The devnet market's overrides, read at the start of each refresh."""
        self._factory = source_factory or sources_from_settings(settings, lambda: self._overrides)
        self._transport = transport

    # ------------------------------------------------------------------ network side

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self.settings.request_timeout_seconds),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,
        )

    def refresh(self, symbols: Collection[Symbol] = ALL_SYMBOLS) -> RefreshResult:
        """Fetch, aggregate and store a rate for each symbol; report those without one."""
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            self._overrides = market.overrides(conn)

        async def run() -> Collected:
            async with self._client() as client:
                return await collect(
                    self._factory(client),
                    symbols,
                    now,
                    self.rules,
                    self.settings.request_timeout_seconds,
                )

        collected = asyncio.run(run())
        samples: dict[Symbol, RateSample] = {}
        with self.database.transaction() as conn:
            recorded_at = self.clock.now(conn)
            for symbol, agg in collected.rates.items():
                samples[symbol] = history.record(conn, agg, kind="live", now=recorded_at)
            for symbol in symbols:
                _note_episode(
                    conn, symbol, samples.get(symbol), collected.missing.get(symbol), recorded_at
                )
        for problem in collected.missing.values():
            log.warning("%s", problem.detail)
        return RefreshResult(samples, {s: e.detail for s, e in collected.missing.items()})

    # ------------------------------------------------------------------ reading

    def current(self, conn: Connection, symbol: Symbol, now: datetime) -> RateSample:
        """The latest live rate, if it is fresh enough to value money with."""
        sample = history.latest(conn, symbol)
        limit = timedelta(seconds=self.settings.max_rate_age_seconds)
        if sample is None:
            raise NoRate(f"no {symbol} rate has been recorded yet")
        if now - sample.sampled_at > limit:
            age = int((now - sample.sampled_at).total_seconds())
            raise NoRate(
                f"the last {symbol} rate is {age} s old (limit {limit.seconds} s): "
                "every source has been failing; nothing is valued at a stale rate"
            )
        return sample

    def rate_at(self, symbol: Symbol, at: datetime) -> RateSample:
        """The rate in force at `at`: the nearest stored sample within the tolerance, else a
        historical candle (stored as a sample) when a candle source is configured."""
        tolerance = timedelta(seconds=self.settings.history_tolerance_seconds)
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            if at > now + tolerance:
                raise NoRate(f"{at.isoformat()} is in the future; there is no rate for it yet")
            sample = history.nearest(conn, symbol, at, tolerance)
        if sample is not None:
            return sample
        if not self.settings.candle_sources:
            raise NoRate(
                f"no {symbol} sample within {tolerance.seconds} s of {at.isoformat()}, "
                "and no candle source is configured to look it up"
            )

        async def run() -> Aggregate:
            async with self._client() as client:
                return await candle_rate(
                    self._factory(client).candles,
                    symbol,
                    at,
                    self.rules,
                    self.settings.request_timeout_seconds,
                )

        agg = asyncio.run(run())
        with self.database.transaction() as conn:
            return history.record(conn, agg, kind="candle", now=self.clock.now(conn))

    def book(self, times: Mapping[AssetCode, Iterable[datetime]]) -> RateBook:
        """The samples around the payment times of a batch, per asset, read in one short
        transaction: `RateBook.sample` then answers each time as `rate_at` would from stored
        samples, with no transaction of its own."""
        tolerance = timedelta(seconds=self.settings.history_tolerance_seconds)
        spans: dict[Symbol, tuple[datetime, datetime]] = {}
        for asset_code, moments in times.items():
            symbol = symbol_of(asset_code)
            for at in moments:
                low, high = spans.get(symbol, (at, at))
                spans[symbol] = (min(low, at), max(high, at))
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            windows = {
                symbol: history.SampleWindow(
                    history.between(conn, symbol, low - tolerance, high + tolerance),
                    low - tolerance,
                    high + tolerance,
                )
                for symbol, (low, high) in spans.items()
            }
        return RateBook(windows, tolerance, now)

    # ------------------------------------------------------------------ locking

    def lock(self, *, purpose: str, asset: AssetCode, side: Side, at: datetime) -> RateLock:
        """The lock for `purpose`, creating it from the rate at `at` if it does not exist.

        An existing lock is returned as it is — a rate is never recomputed — even if the rate
        at `at` would come out differently today.
        """
        with self.database.transaction() as conn:
            existing = get_lock_by_purpose(conn, purpose)
        if existing is not None:
            return existing
        sample = self.rate_at(symbol_of(asset), at)
        with self.database.transaction() as conn:
            return lock_rate(
                conn,
                purpose=purpose,
                asset=asset,
                side=side,
                sample=sample,
                priced_at=at,
                now=self.clock.now(conn),
            )
