"""Binance.US source against recorded answers (parsers are tested on recorded
responses; zero and bad quotes are rejected, one failing market never hides the others)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from kassa.pricing.model import Candle, Quote, SourceError, Symbol
from kassa.pricing.sources.binance import BinanceSource

if TYPE_CHECKING:
    from tests.pricing.conftest import Handler, Wire

NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
LISTED = (Symbol.BTC, Symbol.ETH, Symbol.USDT)


@pytest.fixture
def wire(wire_class: type[Wire]) -> Wire:
    return wire_class("binance", BinanceSource)


def book(wire: Wire, answers: Mapping[str, Handler] | None = None) -> Handler:
    """The recorded book ticker of every market, except the markets `answers` answer otherwise."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v3/ticker/bookTicker"
        market = request.url.params["symbol"]
        if answers and market in answers:
            return answers[market](request)
        return wire.recorded(f"bookTicker_{market}.json")

    return handler


def answer(response: httpx.Response) -> Handler:
    return lambda request: response


def reasons(errors: Mapping[Symbol, SourceError]) -> dict[Symbol, str]:
    return {symbol: error.reason for symbol, error in errors.items()}


def test_recorded_book_tickers_give_exact_bid_and_ask_at_the_moment_asked(wire: Wire) -> None:
    report = wire.fetch(book(wire), now=NOW)

    # The book ticker carries no time: quotes are stamped with `now`.
    assert report.quotes == (
        Quote("binance", Symbol.BTC, Decimal("104209.81000000"), Decimal("104226.43000000"), NOW),
        Quote("binance", Symbol.ETH, Decimal("3881.04000000"), Decimal("3882.37000000"), NOW),
        Quote("binance", Symbol.USDT, Decimal("1.00010000"), Decimal("1.00020000"), NOW),
    )
    assert all(q.observed_at.utcoffset() == timedelta(0) for q in report.quotes)


def test_trx_delisted_from_binance_us_is_unsupported_and_never_asked(wire: Wire) -> None:
    report = wire.fetch(book(wire))

    assert reasons(report.errors) == {Symbol.TRX: "unsupported_symbol"}
    assert sorted(r.url.params["symbol"] for r in wire.requests) == [
        "BTCUSD",
        "ETHUSD",
        "USDTUSD",
    ]


def test_an_invalid_symbol_refusal_costs_only_that_market(wire: Wire) -> None:
    invalid = answer(wire.recorded("invalid_symbol.json", 400))

    report = wire.fetch(book(wire, {"ETHUSD": invalid}), LISTED)

    assert reasons(report.errors) == {Symbol.ETH: "http_status"}
    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.USDT]


def test_a_refusal_sent_with_status_200_is_an_api_error(wire: Wire) -> None:
    invalid = answer(wire.recorded("invalid_symbol.json", 200))

    report = wire.fetch(book(wire, {"BTCUSD": invalid}), LISTED)

    assert reasons(report.errors) == {Symbol.BTC: "api_error"}
    assert "Invalid symbol. (-1121)" in report.errors[Symbol.BTC].detail
    assert len(report.quotes) == 2


def test_rate_limit_is_an_http_error(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("too_many_requests.json", 429), LISTED)

    assert reasons(report.errors) == dict.fromkeys(LISTED, "http_status")


def test_cloudfront_geo_block_page_is_an_http_error(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("cloudfront_403.html", 403), LISTED)

    assert report.quotes == ()
    assert reasons(report.errors) == dict.fromkeys(LISTED, "http_status")


def test_html_served_with_status_200_is_not_json(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("cloudfront_403.html", 200), LISTED)

    assert reasons(report.errors) == dict.fromkeys(LISTED, "not_json")


@pytest.mark.parametrize("side", ["bidPrice", "askPrice"])
@pytest.mark.parametrize("value", ["0.00000000", "-3881.04000000"])
def test_zero_or_negative_price_is_refused_for_that_symbol_only(
    wire: Wire, side: str, value: str
) -> None:
    # An empty order book shows as a zero price on Binance.
    bad = wire.body("bookTicker_ETHUSD.json") | {side: value}

    report = wire.fetch(book(wire, {"ETHUSD": answer(wire.json(bad))}), LISTED)

    assert reasons(report.errors) == {Symbol.ETH: "bad_price"}
    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.USDT]


def test_bid_above_ask_is_refused(wire: Wire) -> None:
    crossed = wire.body("bookTicker_USDTUSD.json") | {"bidPrice": "1.00030000"}

    report = wire.fetch(book(wire, {"USDTUSD": answer(wire.json(crossed))}), [Symbol.USDT])

    assert reasons(report.errors) == {Symbol.USDT: "bad_price"}


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda b: _without(b, "bidPrice"), id="no-bid"),
        pytest.param(lambda b: _without(b, "askPrice") | {"ask": b["askPrice"]}, id="ask-renamed"),
        pytest.param(lambda b: b | {"symbol": "BTCUSDT"}, id="another-market"),
        pytest.param(lambda b: [b], id="multi-symbol-form"),
        pytest.param(lambda b: b | {"bidPrice": True}, id="bid-boolean"),
    ],
)
def test_missing_or_renamed_fields_are_a_bad_shape(
    wire: Wire, change: Callable[[dict[str, Any]], Any]
) -> None:
    changed = change(wire.body("bookTicker_BTCUSD.json"))

    report = wire.fetch(book(wire, {"BTCUSD": answer(wire.json(changed))}), [Symbol.BTC])

    assert reasons(report.errors) == {Symbol.BTC: "bad_shape"}


def test_timeout_on_one_market_keeps_the_others(wire: Wire) -> None:
    report = wire.fetch(book(wire, {"USDTUSD": wire.timeout}), LISTED)

    assert reasons(report.errors) == {Symbol.USDT: "timeout"}
    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.ETH]


# Candles


def klines(wire: Wire, name: str = "klines_BTCUSD.json", status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v3/klines"
        return wire.recorded(name, status)

    return handler


def test_candle_containing_at_is_parsed_exactly(wire: Wire) -> None:
    at = datetime(2026, 11, 20, 14, 2, tzinfo=UTC)  # the first instant of the minute counts

    candle = wire.candle_at(klines(wire), Symbol.BTC, at)

    assert candle == Candle(
        source="binance",
        symbol=Symbol.BTC,
        opened_at=datetime(2026, 11, 20, 14, 2, tzinfo=UTC),
        seconds=60,
        open=Decimal("104171.80000000"),
        high=Decimal("104212.44000000"),
        low=Decimal("104160.50000000"),
        close=Decimal("104201.04000000"),
    )
    assert candle.opened_at <= at < candle.opened_at + timedelta(seconds=candle.seconds)
    [request] = wire.requests
    assert dict(request.url.params) == {
        "symbol": "BTCUSD",
        "interval": "1m",
        "startTime": "1795183320000",
        "limit": "1",
    }


def test_no_kline_is_none(wire: Wire) -> None:
    at = datetime(2026, 11, 20, 14, 2, 37, tzinfo=UTC)

    assert wire.candle_at(klines(wire, "klines_empty.json"), Symbol.BTC, at) is None


def test_the_next_kline_after_a_gap_is_not_taken_for_the_wanted_minute(wire: Wire) -> None:
    at = datetime(2026, 11, 20, 13, 59, 59, tzinfo=UTC)

    assert wire.candle_at(klines(wire), Symbol.BTC, at) is None


def test_kline_refusal_raises(wire: Wire) -> None:
    with pytest.raises(SourceError) as refused:
        wire.candle_at(klines(wire, "invalid_symbol.json", 400), Symbol.BTC, NOW)
    assert refused.value.reason == "http_status"


def test_kline_with_open_time_in_seconds_is_not_mistaken_for_1970(wire: Wire) -> None:
    rows = wire.body("klines_BTCUSD.json")
    rows[0][0] = Decimal(1795183320)  # seconds where milliseconds belong
    at = datetime(2026, 11, 20, 14, 2, 37, tzinfo=UTC)

    assert wire.candle_at(lambda request: wire.json(rows), Symbol.BTC, at) is None


def test_kline_with_a_negative_price_is_refused(wire: Wire) -> None:
    rows = wire.body("klines_BTCUSD.json")
    rows[0][3] = "-104160.50000000"

    with pytest.raises(SourceError) as refused:
        wire.candle_at(lambda request: wire.json(rows), Symbol.BTC, NOW)
    assert refused.value.reason == "bad_price"


def test_candle_for_trx_is_unsupported_without_a_request(wire: Wire) -> None:
    with pytest.raises(SourceError) as refused:
        wire.candle_at(wire.timeout, Symbol.TRX, NOW)
    assert refused.value.reason == "unsupported_symbol"
    assert wire.requests == []
