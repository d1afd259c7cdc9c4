"""The pricing service on SQLite and PostgreSQL: refresh with fallbacks, history, locks.

Sources here are small scripted implementations of the `RateSource` / `CandleSource` ports
(fakes of our own port; the real HTTP sources have their own tests on recorded bodies).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.money import BTC, ETH, USD, USDT_TRC20, AssetCode, Money
from kassa.pricing import history
from kassa.pricing.errors import NoRate
from kassa.pricing.history import RateSample
from kassa.pricing.locks import LockRequest, Side, get_lock, lock_rates
from kassa.pricing.model import Candle, Quote, SourceError, Symbol
from kassa.pricing.service import PricingService, SourceSet
from kassa.pricing.settings import PricingSettings
from kassa.pricing.sources.base import SourceReport
from kassa.pricing.tables import rate_lock

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory


class Scripted:
    """A source that answers from a table of mid prices, or fails the way it is told to."""

    def __init__(
        self,
        name: str,
        prices: dict[Symbol, str],
        *,
        fail: str | None = None,
        delay: float = 0.0,
        age: timedelta = timedelta(seconds=2),
    ) -> None:
        self.name = name
        self.prices = prices
        self.fail = fail
        self.delay = delay
        self.age = age
        self.asked: list[tuple[Symbol, ...]] = []

    async def fetch(self, symbols: Collection[Symbol], now: datetime) -> SourceReport:
        self.asked.append(tuple(symbols))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail == "crash":
            raise RuntimeError("parser bug")
        errors: dict[Symbol, SourceError] = {}
        quotes: list[Quote] = []
        for symbol in symbols:
            if self.fail or symbol not in self.prices:
                errors[symbol] = SourceError(self.name, self.fail or "unsupported_symbol", "x")
                continue
            mid = Decimal(self.prices[symbol])
            spread = mid / 20000
            quotes.append(Quote(self.name, symbol, mid - spread, mid + spread, now - self.age))
        return SourceReport(self.name, tuple(quotes), errors)


class Candles:
    def __init__(self, name: str, closes: dict[Symbol, str] | None) -> None:
        self.name = name
        self.closes = closes
        self.calls = 0

    async def candle_at(self, symbol: Symbol, at: datetime) -> Candle | None:
        self.calls += 1
        if self.closes is None or symbol not in self.closes:
            return None
        close = Decimal(self.closes[symbol])
        opened = at.replace(second=0, microsecond=0)
        return Candle(self.name, symbol, opened, 60, close, close, close, close)


ALL = {Symbol.BTC: "60000", Symbol.ETH: "3000", Symbol.TRX: "0.25", Symbol.USDT: "1"}


def service(
    db: Database,
    clock: ManualClock,
    primary: Iterable[object],
    *,
    fallback: Iterable[object] = (),
    candles: Iterable[object] = (),
    **settings: object,
) -> PricingService:
    values: dict[str, object] = {"min_sources": 2, "request_timeout_seconds": 0.5}
    values.update(settings)
    if candles:
        values.setdefault("candle_sources", ["coinbase"])
    sources = SourceSet(tuple(primary), tuple(fallback), tuple(candles))  # type: ignore[arg-type]
    return PricingService(
        db,
        clock,
        PricingSettings.model_validate(values),
        source_factory=lambda _client: sources,
    )


def test_refresh_stores_each_rate_with_every_quote_behind_it(
    db: Database, clock: ManualClock
) -> None:
    down = Scripted("kraken", {}, fail="timeout")
    pricing = service(db, clock, [Scripted("coinbase", ALL), Scripted("bitstamp", ALL), down])
    result = pricing.refresh()
    assert set(result.samples) == set(Symbol) and not result.missing

    with db.transaction() as conn:
        btc = pricing.current(conn, Symbol.BTC, clock.now())
    assert btc.sampled_at == clock.now()
    assert btc.bid == Decimal("59997") and btc.ask == Decimal("60003")
    assert btc.sources == ("coinbase", "bitstamp")
    failed = [q for q in btc.quotes if not q.accepted]
    assert [(q.source, q.rejection, q.bid) for q in failed] == [("kraken", "timeout", None)]
    accepted = {q.source: q for q in btc.quotes if q.accepted}
    assert accepted["coinbase"].observed_at == clock.now() - timedelta(seconds=2)


def test_fallback_sources_are_asked_in_order_only_for_missing_symbols(
    db: Database, clock: ManualClock
) -> None:
    coinbase = Scripted("coinbase", ALL)
    bitstamp = Scripted("bitstamp", {Symbol.BTC: "60000", Symbol.ETH: "3000", Symbol.USDT: "1"})
    binance = Scripted("binance", {}, fail="http_status")
    coingecko = Scripted("coingecko", ALL)
    never = Scripted("never", ALL)
    pricing = service(db, clock, [coinbase, bitstamp], fallback=[binance, coingecko, never])
    result = pricing.refresh()
    assert not result.missing
    assert binance.asked == [(Symbol.TRX,)]
    assert coingecko.asked == [(Symbol.TRX,)]
    assert never.asked == []
    assert result.samples[Symbol.TRX].sources == ("coinbase", "coingecko")
    assert {q.source: q.rejection for q in result.samples[Symbol.TRX].quotes} == {
        "coinbase": None,
        "bitstamp": "unsupported_symbol",
        "binance": "http_status",
        "coingecko": None,
    }


def test_a_slow_or_broken_source_does_not_stop_the_others(db: Database, clock: ManualClock) -> None:
    slow = Scripted("slow", ALL, delay=5)
    broken = Scripted("broken", ALL, fail="crash")
    pricing = service(db, clock, [Scripted("a", ALL), slow, broken, Scripted("b", ALL)])
    result = pricing.refresh([Symbol.ETH])
    eth = result.samples[Symbol.ETH]
    reasons = {q.source: q.rejection for q in eth.quotes}
    assert reasons == {"a": None, "slow": "timeout", "broken": "error", "b": None}


def test_every_source_down_stores_nothing_and_the_last_rate_ages_out(
    db: Database, clock: ManualClock
) -> None:
    healthy = [Scripted("a", ALL), Scripted("b", ALL)]
    service(db, clock, healthy).refresh()
    with db.transaction() as conn:
        before = history.count_samples(conn)

    clock.advance(timedelta(seconds=60))
    down = service(
        db, clock, [Scripted("a", {}, fail="http_status"), Scripted("b", {}, fail="not_json")]
    )
    result = down.refresh()
    assert result.samples == {}
    assert set(result.missing) == set(Symbol)
    assert "a: http_status" in result.missing[Symbol.BTC]
    with db.transaction() as conn:
        assert history.count_samples(conn) == before
        # Still fresh enough (60 s < 300 s): the last good rate serves.
        assert down.current(conn, Symbol.BTC, clock.now()).bid == Decimal("59997")

    clock.advance(timedelta(seconds=241))
    with db.transaction() as conn, pytest.raises(NoRate, match="301 s old"):
        down.current(conn, Symbol.BTC, clock.now())


def test_no_rate_before_any_refresh(db: Database, clock: ManualClock) -> None:
    pricing = service(db, clock, [Scripted("a", ALL)])
    with db.transaction() as conn, pytest.raises(NoRate, match="no BTC rate has been recorded"):
        pricing.current(conn, Symbol.BTC, clock.now())


def test_rate_at_answers_from_the_nearest_sample_within_tolerance(
    db: Database, clock: ManualClock
) -> None:
    pricing = service(db, clock, [Scripted("a", ALL), Scripted("b", ALL)])
    start = clock.now()
    marks = {}
    for minute, price in enumerate(("60000", "61000", "62000")):
        clock.set(start + timedelta(minutes=minute))
        pricing._factory = lambda _c, p=price: SourceSet(  # type: ignore[misc]
            (Scripted("a", {Symbol.BTC: p}), Scripted("b", {Symbol.BTC: p}))
        )
        marks[price] = pricing.refresh([Symbol.BTC]).samples[Symbol.BTC]

    asked = start + timedelta(seconds=70)  # 10 s after the second sample
    assert pricing.rate_at(Symbol.BTC, asked).id == marks["61000"].id
    # Exactly between two samples: the earlier one was in force.
    assert pricing.rate_at(Symbol.BTC, start + timedelta(seconds=30)).id == marks["60000"].id
    assert pricing.rate_at(Symbol.BTC, start - timedelta(seconds=299)).id == marks["60000"].id
    with pytest.raises(NoRate, match="no candle source is configured"):
        pricing.rate_at(Symbol.BTC, start - timedelta(seconds=301))
    with pytest.raises(NoRate, match="no ETH sample"):
        pricing.rate_at(Symbol.ETH, asked)


def test_a_rate_book_answers_every_time_with_the_sample_rate_at_picks(
    db: Database, clock: ManualClock
) -> None:
    """The watcher prices a batch of deposits from one read (`PricingService.book`): for every
    payment time, the same sample `rate_at` would pick, and nothing where `rate_at` has none."""
    pricing = service(db, clock, [Scripted("a", ALL), Scripted("b", ALL)])
    start = clock.now()
    for minute, price in enumerate(("60000", "61000", "61000", "62000")):
        clock.set(start + timedelta(minutes=minute // 2 * 2, seconds=minute % 2))
        pricing._factory = lambda _c, p=price: SourceSet(  # type: ignore[misc]
            (Scripted("a", {Symbol.BTC: p}), Scripted("b", {Symbol.BTC: p}))
        )
        pricing.refresh([Symbol.BTC])
    times = [start + timedelta(seconds=s) for s in range(-420, 600, 15)]
    book = pricing.book({AssetCode.BTC: times, AssetCode.ETH: times[:1]})

    for at in times:
        try:
            expected: int | None = pricing.rate_at(Symbol.BTC, at).id
        except NoRate:
            expected = None
        found = book.sample(AssetCode.BTC, at)
        assert (found and found.id) == expected, at
    assert book.sample(AssetCode.ETH, times[0]) is None  # no ETH sample at all
    assert book.sample(AssetCode.TRX, times[0]) is None  # not read: rate_at must answer


def test_rate_at_a_time_in_the_future_is_refused(db: Database, clock: ManualClock) -> None:
    pricing = service(db, clock, [Scripted("a", ALL)], min_sources=1)
    pricing.refresh()
    with pytest.raises(NoRate, match="in the future"):
        pricing.rate_at(Symbol.BTC, clock.now() + timedelta(hours=1))


def test_rate_at_falls_back_to_candles_and_stores_them(db: Database, clock: ManualClock) -> None:
    coinbase = Candles("coinbase", {Symbol.BTC: "58000.5"})
    kraken = Candles("kraken", {Symbol.BTC: "58010.5"})
    empty = Candles("bitstamp", None)
    pricing = service(
        db, clock, [Scripted("a", ALL)], candles=[coinbase, kraken, empty], spread_bps=10
    )
    at = datetime(2026, 11, 1, 9, 30, 15, tzinfo=UTC)
    sample = pricing.rate_at(Symbol.BTC, at)
    assert sample.kind == "candle"
    assert sample.sampled_at == at
    assert (sample.market_bid, sample.market_ask) == (Decimal("58000.5"), Decimal("58010.5"))
    assert sample.bid == Decimal("57942.4995")  # 58000.5 less 10 bps
    assert {q.source: q.rejection for q in sample.quotes} == {
        "coinbase": None,
        "kraken": None,
        "bitstamp": "no_candle",
    }
    # The second question is answered from history: no new candle request.
    again = pricing.rate_at(Symbol.BTC, at + timedelta(seconds=20))
    assert again.id == sample.id
    assert coinbase.calls == 1


def test_rate_at_says_plainly_when_no_candle_has_it(db: Database, clock: ManualClock) -> None:
    pricing = service(db, clock, [Scripted("a", ALL)], candles=[Candles("coinbase", None)])
    with pytest.raises(NoRate, match="coinbase: no_candle"):
        pricing.rate_at(Symbol.TRX, datetime(2020, 1, 1, tzinfo=UTC))


def test_worked_example_deposit_and_refund_valuation(db: Database, clock: ManualClock) -> None:
    """docs/domain.md §7: 0.001 BTC at $60 000 credits $60.00; refunded at $50 000: 0.0012 BTC."""
    static = PricingService(db, clock, PricingSettings(static_rates={Symbol.BTC: Decimal(60000)}))
    static.refresh([Symbol.BTC])
    paid_at = clock.now()
    deposit = static.lock(
        purpose="deposit:btc:abc:0", asset=AssetCode.BTC, side=Side.BID, at=paid_at
    )
    assert deposit.to_usd(Money.parse("0.001", BTC)) == Money.parse("60", USD)
    assert deposit.sources == ("static",)

    clock.advance(timedelta(days=10))
    later = PricingService(db, clock, PricingSettings(static_rates={Symbol.BTC: Decimal(50000)}))
    later.refresh([Symbol.BTC])
    refund = later.lock(purpose="refund:1", asset=AssetCode.BTC, side=Side.ASK, at=clock.now())
    assert refund.from_usd(Money.parse("60", USD), BTC) == Money.parse("0.0012", BTC)
    # The deposit's lock is never recomputed, whatever today's rate is.
    again = later.lock(purpose="deposit:btc:abc:0", asset=AssetCode.BTC, side=Side.BID, at=paid_at)
    assert again == deposit
    with db.transaction() as conn:
        assert get_lock(conn, deposit.id).rate == Decimal(60000)


def test_locking_many_rates_at_once_keeps_every_earlier_lock(
    db: Database, clock: ManualClock
) -> None:
    """`lock_rates` (a watcher's credit batch): the new purposes locked in one statement, a
    purpose locked before keeps its lock, a purpose asked twice is locked once, and a sample
    of the wrong coin only answers a purpose locked before."""
    pricing = PricingService(
        db,
        clock,
        PricingSettings(static_rates={Symbol.BTC: Decimal(60000), Symbol.ETH: Decimal(3000)}),
    )
    pricing.refresh([Symbol.BTC, Symbol.ETH])
    paid_at = clock.now()
    earlier = pricing.lock(purpose="deposit:old", asset=AssetCode.BTC, side=Side.BID, at=paid_at)
    clock.advance(timedelta(hours=1))
    cheaper = {Symbol.BTC: Decimal(50000), Symbol.ETH: Decimal(2000)}
    later = PricingService(db, clock, PricingSettings(static_rates=cheaper))
    later.refresh([Symbol.BTC, Symbol.ETH])
    btc, eth = later.rate_at(Symbol.BTC, clock.now()), later.rate_at(Symbol.ETH, clock.now())

    def ask(purpose: str, coin: AssetCode, sample: RateSample) -> LockRequest:
        return LockRequest(purpose, coin, Side.BID, sample, clock.now())

    with db.transaction() as conn:
        locks = lock_rates(
            conn,
            [
                ask("deposit:old", AssetCode.BTC, btc),
                ask("deposit:a", AssetCode.BTC, btc),
                ask("deposit:a", AssetCode.BTC, eth),  # asked twice: the first wins
                ask("deposit:b", AssetCode.ETH, eth),
                ask("deposit:old", AssetCode.BTC, eth),  # wrong coin, but locked before
            ],
            now=clock.now(),
        )
        assert locks["deposit:old"] == earlier
        assert locks["deposit:a"].rate == Decimal(50000)
        assert locks["deposit:b"].rate == Decimal(2000)
        assert get_lock(conn, locks["deposit:a"].id) == locks["deposit:a"]
        assert conn.execute(text("SELECT count(*) FROM rate_lock")).scalar_one() == 3
    with db.transaction() as conn, pytest.raises(ValueError, match="ETH rate cannot value BTC"):
        lock_rates(conn, [ask("deposit:c", AssetCode.BTC, eth)], now=clock.now())
    with db.transaction() as conn:
        assert conn.execute(text("SELECT count(*) FROM rate_lock")).scalar_one() == 3
        assert lock_rates(conn, [], now=clock.now()) == {}


def test_lock_conversions_round_in_the_house_favour(db: Database, clock: ManualClock) -> None:
    pricing = PricingService(
        db, clock, PricingSettings(static_rates={Symbol.ETH: Decimal("3333.33")})
    )
    pricing.refresh([Symbol.ETH])
    lock = pricing.lock(purpose="p", asset=AssetCode.ETH, side=Side.BID, at=clock.now())
    one_wei = Money(1, ETH)
    assert lock.to_usd(one_wei) == Money(0, USD)  # credit rounds down
    assert lock.usd_charge_for(one_wei) == Money(1, USD)  # charge rounds up
    # $1 at 3333.33 is 0.000300000300000300000300… ETH, rounded down to the wei.
    assert lock.from_usd(Money.parse("1", USD), ETH) == Money(300000300000300, ETH)
    with pytest.raises(ValueError, match="prices ETH, not BTC"):
        lock.to_usd(Money(1, BTC))


def test_usdt_lock_values_both_tokens_at_par(db: Database, clock: ManualClock) -> None:
    pricing = PricingService(
        db, clock, PricingSettings(static_rates={Symbol.USDT: Decimal("0.9995")})
    )
    pricing.refresh([Symbol.USDT])
    lock = pricing.lock(purpose="d", asset=AssetCode.USDT_TRC20, side=Side.BID, at=clock.now())
    assert lock.rate == Decimal(1)
    assert lock.to_usd(Money.parse("25.5", USDT_TRC20)) == Money.parse("25.5", USD)


def test_no_lock_without_a_rate(db: Database, clock: ManualClock) -> None:
    pricing = service(db, clock, [Scripted("a", {}, fail="timeout")], min_sources=1)
    pricing.refresh()
    with pytest.raises(NoRate):
        pricing.lock(purpose="d", asset=AssetCode.BTC, side=Side.BID, at=clock.now())
    with db.transaction() as conn:
        assert conn.execute(text("SELECT count(*) FROM rate_lock")).scalar_one() == 0


def test_rate_history_and_locks_are_append_only(db: Database, clock: ManualClock) -> None:
    pricing = PricingService(db, clock, PricingSettings())
    pricing.refresh([Symbol.BTC])
    pricing.lock(purpose="x", asset=AssetCode.BTC, side=Side.BID, at=clock.now())
    for statement in (
        update(rate_lock).values(rate=Decimal(1)),
        text("UPDATE rate_sample SET bid = ask"),
        text("DELETE FROM rate_quote"),
    ):
        with pytest.raises(DBAPIError, match="append-only"), db.transaction() as conn:
            conn.execute(statement)


@pytest.mark.postgres
def test_racing_lockers_get_one_lock(pg_databases: DatabaseFactory, clock: ManualClock) -> None:
    db = pg_databases.new(pool_size=8)
    PricingService(db, clock, PricingSettings()).refresh([Symbol.BTC])
    barrier = threading.Barrier(6)
    locks = []
    errors: list[BaseException] = []

    def lock_it() -> None:
        pricing = PricingService(db, clock, PricingSettings())
        barrier.wait()
        try:
            locks.append(
                pricing.lock(purpose="race", asset=AssetCode.BTC, side=Side.BID, at=clock.now())
            )
        except (IntegrityError, NoRate) as exc:  # pragma: no cover - would be the bug
            errors.append(exc)

    threads = [threading.Thread(target=lock_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({lock.id for lock in locks}) == 1
    with db.transaction() as conn:
        assert conn.execute(text("SELECT count(*) FROM rate_lock")).scalar_one() == 1


def test_static_demo_rates_need_no_network(db: Database, clock: ManualClock) -> None:
    def refuse(_request: httpx.Request) -> httpx.Response:
        raise AssertionError("the static source must not touch the network")

    pricing = PricingService(db, clock, PricingSettings(), transport=httpx.MockTransport(refuse))
    samples = pricing.refresh().samples
    assert {s: samples[s].bid for s in Symbol} == {
        Symbol.BTC: Decimal(60000),
        Symbol.ETH: Decimal(3000),
        Symbol.TRX: Decimal("0.25"),
        Symbol.USDT: Decimal(1),
    }
