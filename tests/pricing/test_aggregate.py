"""Aggregation rules: median of healthy quotes; zero, stale, future and outlier quotes rejected;
a minimum number of agreeing sources; the spread in the house's favour; the USDT peg."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa.pricing.aggregate import Rules, aggregate, judge
from kassa.pricing.errors import NoRate
from kassa.pricing.model import Quote, SourceError, Symbol

NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
RULES = Rules(
    min_sources=2,
    max_quote_age=timedelta(seconds=120),
    outlier_band_bps=200,
    spread_bps=0,
    usdt_peg_band_bps=100,
)


def q(
    source: str, bid: str, ask: str | None = None, *, age: int = 5, sym: Symbol = Symbol.BTC
) -> Quote:
    return Quote(source, sym, Decimal(bid), Decimal(ask or bid), NOW - timedelta(seconds=age))


def with_rules(**changes: object) -> Rules:
    values = {f: getattr(RULES, f) for f in RULES.__dataclass_fields__}
    values.update(changes)
    return Rules(**values)


def test_rate_is_the_median_of_healthy_quotes() -> None:
    rate = aggregate(
        Symbol.BTC,
        [q("a", "60000", "60010"), q("b", "60020", "60030"), q("c", "59990", "60000")],
        [],
        NOW,
        RULES,
    )
    assert rate.market_bid == Decimal("60000")
    assert rate.market_ask == Decimal("60010")
    assert (rate.bid, rate.ask) == (rate.market_bid, rate.market_ask)  # no spread configured
    assert rate.accepted_count == 3
    assert rate.sampled_at == NOW


def test_even_number_of_quotes_takes_the_middle_pair() -> None:
    rate = aggregate(
        Symbol.ETH, [q("a", "3000", sym=Symbol.ETH), q("b", "3001", sym=Symbol.ETH)], [], NOW, RULES
    )
    assert rate.market_bid == Decimal("3000.5")


def test_stale_quote_is_rejected_and_said_so() -> None:
    verdicts = judge(
        Symbol.BTC, [q("old", "60000", age=121), q("new", "60000", age=119)], [], NOW, RULES
    )
    by_source = {v.source: v for v in verdicts}
    assert by_source["old"].rejection == "stale"
    assert by_source["new"].accepted


def test_quote_from_the_future_is_rejected() -> None:
    verdicts = judge(Symbol.BTC, [q("skewed", "60000", age=-120)], [], NOW, RULES)
    assert verdicts[0].rejection == "future"


def test_zero_and_negative_prices_are_rejected() -> None:
    verdicts = judge(Symbol.BTC, [q("zero", "0"), q("neg", "-1"), q("ok", "60000")], [], NOW, RULES)
    rejected = {v.source: v.rejection for v in verdicts if not v.accepted}
    assert rejected == {"zero": "bad_price", "neg": "bad_price"}


def test_outlier_beyond_the_band_is_rejected() -> None:
    rate = aggregate(
        Symbol.BTC,
        [q("a", "60000"), q("b", "60100"), q("c", "59900"), q("fat-finger", "66000")],
        [],
        NOW,
        RULES,
    )
    outliers = [v for v in rate.verdicts if v.rejection == "outlier"]
    assert [v.source for v in outliers] == ["fat-finger"]
    assert "bps from the median" in (outliers[0].detail or "")
    assert rate.market_bid == Decimal("60000")


def test_quote_just_inside_the_band_is_kept() -> None:
    # Median of (60000, 61200) is 60600; 61200 is 99 bps away.
    rate = aggregate(Symbol.BTC, [q("a", "60000"), q("b", "61200")], [], NOW, RULES)
    assert rate.accepted_count == 2


def test_two_sources_that_disagree_give_no_rate() -> None:
    with pytest.raises(NoRate) as caught:
        aggregate(Symbol.BTC, [q("a", "60000"), q("b", "70000")], [], NOW, RULES)
    assert "0 healthy quote(s), 2 needed" in caught.value.detail
    assert "outlier" in caught.value.detail


def test_too_few_sources_is_no_rate_with_every_reason() -> None:
    failures = [SourceError("kraken", "timeout", "no answer within 5 s")]
    with pytest.raises(NoRate) as caught:
        aggregate(
            Symbol.BTC, [q("coinbase", "60000"), q("old", "60000", age=600)], failures, NOW, RULES
        )
    detail = caught.value.detail
    assert "1 healthy quote(s), 2 needed" in detail
    assert "kraken: timeout" in detail
    assert "old: stale" in detail


def test_all_sources_down_is_no_rate() -> None:
    failures = [SourceError(name, "http_status", "HTTP 503") for name in ("a", "b", "c")]
    with pytest.raises(NoRate, match="no BTC rate: 0 healthy"):
        aggregate(Symbol.BTC, [], failures, NOW, RULES)


def test_spread_lowers_the_bid_and_raises_the_ask_rounding_for_the_house() -> None:
    rules = with_rules(spread_bps=50)
    rate = aggregate(
        Symbol.TRX,
        [q("a", "0.2500000000003", sym=Symbol.TRX), q("b", "0.2500000000003", sym=Symbol.TRX)],
        [],
        NOW,
        rules,
    )
    # 0.2500000000003 * 0.995 = 0.2487500000002985 -> floor to 12 places
    assert rate.bid == Decimal("0.248750000000")
    # 0.2500000000003 * 1.005 = 0.2512500000003015 -> ceiling to 12 places
    assert rate.ask == Decimal("0.251250000001")
    assert rate.spread_bps == 50


def test_usdt_within_the_band_is_valued_at_par() -> None:
    rate = aggregate(
        Symbol.USDT,
        [q("a", "0.9992", "0.9996", sym=Symbol.USDT), q("b", "0.9995", "0.9999", sym=Symbol.USDT)],
        [],
        NOW,
        with_rules(spread_bps=50),
    )
    assert rate.pegged and not rate.depegged
    assert rate.bid == rate.ask == Decimal(1)
    assert rate.spread_bps == 0
    assert rate.market_bid == Decimal("0.99935")


def test_usdt_depeg_uses_the_market_price_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kassa.pricing.aggregate"):
        rate = aggregate(
            Symbol.USDT,
            [
                q("a", "0.9700", "0.9710", sym=Symbol.USDT),
                q("b", "0.9702", "0.9712", sym=Symbol.USDT),
            ],
            [],
            NOW,
            RULES,
        )
    assert rate.depegged and not rate.pegged
    assert rate.bid == Decimal("0.9701") and rate.ask == Decimal("0.9711")
    assert "USDT de-peg" in caplog.text


def test_a_quote_for_another_symbol_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="ETH quote"):
        aggregate(Symbol.BTC, [q("a", "3000", sym=Symbol.ETH)], [], NOW, RULES)


prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1000000"), places=4)


@given(st.lists(st.tuples(prices, prices), min_size=1, max_size=7), st.integers(0, 500))
def test_bid_never_exceeds_ask_and_spread_never_favours_the_customer(
    pairs: list[tuple[Decimal, Decimal]], spread: int
) -> None:
    quotes = [q(f"s{i}", str(min(a, b)), str(max(a, b))) for i, (a, b) in enumerate(pairs)]
    rules = with_rules(min_sources=1, outlier_band_bps=5000, spread_bps=spread)
    try:
        rate = aggregate(Symbol.BTC, quotes, [], NOW, rules)
    except NoRate:
        return
    assert rate.market_bid <= rate.market_ask
    assert rate.bid <= rate.market_bid
    assert rate.ask >= rate.market_ask
    assert rate.bid <= rate.ask
