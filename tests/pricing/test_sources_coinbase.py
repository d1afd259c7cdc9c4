"""Coinbase Exchange source against recorded answers (parsers are tested on recorded
responses; zero and bad quotes are rejected, one failing product never hides the others)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from kassa.pricing.model import Candle, Quote, SourceError, Symbol
from kassa.pricing.sources.coinbase import CoinbaseSource

if TYPE_CHECKING:
    from tests.pricing.conftest import Handler, Wire

NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
LISTED = (Symbol.BTC, Symbol.ETH, Symbol.USDT)


@pytest.fixture
def wire(wire_class: type[Wire]) -> Wire:
    return wire_class("coinbase", CoinbaseSource)


def tickers(wire: Wire, answers: Mapping[str, Handler] | None = None) -> Handler:
    """The recorded ticker of every product, except the products `answers` answer otherwise."""

    def handler(request: httpx.Request) -> httpx.Response:
        _, products, product, endpoint = request.url.path.split("/")
        assert (products, endpoint) == ("products", "ticker")
        if answers and product in answers:
            return answers[product](request)
        return wire.recorded(f"ticker_{product}.json")

    return handler


def answer(response: httpx.Response) -> Handler:
    return lambda request: response


def reasons(errors: Mapping[Symbol, SourceError]) -> dict[Symbol, str]:
    return {symbol: error.reason for symbol, error in errors.items()}


def test_recorded_tickers_give_exact_bid_ask_and_trade_time_in_utc(wire: Wire) -> None:
    report = wire.fetch(tickers(wire), now=NOW)

    assert report.source == "coinbase"
    assert report.quotes == (
        Quote(
            "coinbase",
            Symbol.BTC,
            bid=Decimal("104215.36"),
            ask=Decimal("104215.37"),
            observed_at=datetime(2026, 11, 20, 14, 3, 9, 774713, tzinfo=UTC),
        ),
        Quote(
            "coinbase",
            Symbol.ETH,
            bid=Decimal("3881.52"),
            ask=Decimal("3881.53"),
            observed_at=datetime(2026, 11, 20, 14, 3, 10, 102845, tzinfo=UTC),
        ),
        Quote(
            "coinbase",
            Symbol.USDT,
            bid=Decimal("1.00012"),
            ask=Decimal("1.00013"),
            observed_at=datetime(2026, 11, 20, 14, 2, 58, 340021, tzinfo=UTC),
        ),
    )
    for quote in report.quotes:
        assert quote.observed_at.utcoffset() == timedelta(0)
        assert type(quote.bid) is Decimal and type(quote.ask) is Decimal


def test_trx_is_unsupported_and_never_asked(wire: Wire) -> None:
    report = wire.fetch(tickers(wire))

    assert reasons(report.errors) == {Symbol.TRX: "unsupported_symbol"}
    assert sorted(r.url.path for r in wire.requests) == [
        "/products/BTC-USD/ticker",
        "/products/ETH-USD/ticker",
        "/products/USDT-USD/ticker",
    ]


def test_an_offset_time_is_converted_to_utc_and_a_naive_one_refused(wire: Wire) -> None:
    offset = wire.body("ticker_BTC-USD.json") | {"time": "2026-11-20T15:03:09.5+01:00"}
    naive = wire.body("ticker_ETH-USD.json") | {"time": "2026-11-20T14:03:10"}

    report = wire.fetch(
        tickers(wire, {"BTC-USD": answer(wire.json(offset)), "ETH-USD": answer(wire.json(naive))}),
        [Symbol.BTC, Symbol.ETH],
    )

    [btc] = report.quotes
    assert btc.observed_at == datetime(2026, 11, 20, 14, 3, 9, 500000, tzinfo=UTC)
    assert btc.observed_at.tzinfo is UTC
    assert reasons(report.errors) == {Symbol.ETH: "bad_shape"}


def test_cloudflare_block_page_is_an_http_error_for_every_product(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("cloudflare_403.html", 403))

    assert report.quotes == ()
    assert reasons(report.errors) == {
        Symbol.BTC: "http_status",
        Symbol.ETH: "http_status",
        Symbol.USDT: "http_status",
        Symbol.TRX: "unsupported_symbol",
    }
    assert "HTTP 403" in report.errors[Symbol.BTC].detail


def test_html_served_with_status_200_is_not_json(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("cloudflare_403.html", 200), LISTED)

    assert report.quotes == ()
    assert set(reasons(report.errors).values()) == {"not_json"}
    assert "text/html" in report.errors[Symbol.ETH].detail


def test_rate_limit_on_one_product_keeps_the_others(wire: Wire) -> None:
    limited = answer(wire.recorded("rate_limited.json", 429))

    report = wire.fetch(tickers(wire, {"ETH-USD": limited}), LISTED)

    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.USDT]
    assert reasons(report.errors) == {Symbol.ETH: "http_status"}
    assert "HTTP 429" in report.errors[Symbol.ETH].detail


def test_a_delisted_product_answering_404_costs_only_that_symbol(wire: Wire) -> None:
    gone = answer(wire.recorded("not_found.json", 404))

    report = wire.fetch(tickers(wire, {"USDT-USD": gone}), LISTED)

    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.ETH]
    assert reasons(report.errors) == {Symbol.USDT: "http_status"}


def test_a_message_body_is_an_api_error(wire: Wire) -> None:
    maintenance = answer(wire.json({"message": "Service unavailable: scheduled maintenance"}))

    report = wire.fetch(tickers(wire, {"BTC-USD": maintenance}), LISTED)

    assert reasons(report.errors) == {Symbol.BTC: "api_error"}
    assert "maintenance" in report.errors[Symbol.BTC].detail
    assert len(report.quotes) == 2


@pytest.mark.parametrize("side", ["bid", "ask"])
@pytest.mark.parametrize("value", ["0", "0.00", "-104215.36"])
def test_zero_or_negative_price_is_refused_for_that_symbol_only(
    wire: Wire, side: str, value: str
) -> None:
    bad = wire.body("ticker_BTC-USD.json") | {side: value}

    report = wire.fetch(tickers(wire, {"BTC-USD": answer(wire.json(bad))}), LISTED)

    assert reasons(report.errors) == {Symbol.BTC: "bad_price"}
    assert [q.symbol for q in report.quotes] == [Symbol.ETH, Symbol.USDT]


def test_bid_above_ask_is_refused(wire: Wire) -> None:
    crossed = wire.body("ticker_ETH-USD.json") | {"bid": "3881.54", "ask": "3881.53"}

    report = wire.fetch(tickers(wire, {"ETH-USD": answer(wire.json(crossed))}), [Symbol.ETH])

    assert report.quotes == ()
    assert reasons(report.errors) == {Symbol.ETH: "bad_price"}
    assert "above ask" in report.errors[Symbol.ETH].detail


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda b: _without(b, "bid"), id="no-bid"),
        pytest.param(lambda b: _without(b, "ask") | {"best_ask": b["ask"]}, id="ask-renamed"),
        pytest.param(lambda b: _without(b, "time"), id="no-time"),
        pytest.param(lambda b: b | {"time": 1795183389}, id="time-as-number"),
        pytest.param(lambda b: b | {"time": "yesterday"}, id="time-not-iso"),
        pytest.param(lambda b: b | {"bid": None}, id="bid-null"),
        pytest.param(lambda b: [b], id="wrapped-in-a-list"),
    ],
)
def test_missing_or_renamed_fields_are_a_bad_shape(
    wire: Wire, change: Callable[[dict[str, Any]], Any]
) -> None:
    changed = change(wire.body("ticker_BTC-USD.json"))

    report = wire.fetch(tickers(wire, {"BTC-USD": answer(wire.json(changed))}), [Symbol.BTC])

    assert report.quotes == ()
    assert reasons(report.errors) == {Symbol.BTC: "bad_shape"}


def test_timeout_on_one_product_keeps_the_others(wire: Wire) -> None:
    report = wire.fetch(tickers(wire, {"BTC-USD": wire.timeout}), LISTED)

    assert reasons(report.errors) == {Symbol.BTC: "timeout"}
    assert [q.symbol for q in report.quotes] == [Symbol.ETH, Symbol.USDT]


def test_timeout_everywhere_is_reported_not_raised(wire: Wire) -> None:
    report = wire.fetch(wire.timeout)

    assert report.quotes == ()
    assert reasons(report.errors) == {
        Symbol.BTC: "timeout",
        Symbol.ETH: "timeout",
        Symbol.USDT: "timeout",
        Symbol.TRX: "unsupported_symbol",
    }


# Candles


def candles(wire: Wire, name: str, status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/products/BTC-USD/candles"
        return wire.recorded(name, status)

    return handler


def test_candle_containing_at_is_parsed_exactly(wire: Wire) -> None:
    at = datetime(2026, 11, 20, 14, 2, 37, 250000, tzinfo=UTC)

    candle = wire.candle_at(candles(wire, "candles_BTC-USD.json"), Symbol.BTC, at)

    assert candle == Candle(
        source="coinbase",
        symbol=Symbol.BTC,
        opened_at=datetime(2026, 11, 20, 14, 2, tzinfo=UTC),
        seconds=60,
        open=Decimal("104171.8"),
        high=Decimal("104212.44"),
        low=Decimal("104160.5"),
        close=Decimal("104201.04"),
    )
    assert candle.opened_at <= at < candle.opened_at + timedelta(seconds=candle.seconds)
    [request] = wire.requests
    assert dict(request.url.params) == {
        "granularity": "60",
        "start": "2026-11-20T14:02:00+00:00",
        "end": "2026-11-20T14:03:00+00:00",
    }


def test_candle_at_accepts_a_non_utc_time(wire: Wire) -> None:
    at = datetime(2026, 11, 20, 15, 2, 37, tzinfo=timezone(timedelta(hours=1)))

    candle = wire.candle_at(candles(wire, "candles_BTC-USD.json"), Symbol.BTC, at)

    assert candle is not None
    assert candle.opened_at == datetime(2026, 11, 20, 14, 2, tzinfo=UTC)


def test_no_candle_for_a_quiet_minute_is_none(wire: Wire) -> None:
    at = datetime(2026, 11, 20, 14, 2, 37, tzinfo=UTC)

    assert wire.candle_at(candles(wire, "candles_empty.json"), Symbol.BTC, at) is None


def test_a_neighbouring_candle_is_not_taken_for_the_wanted_minute(wire: Wire) -> None:
    rows = wire.body("candles_BTC-USD.json")[:1]  # only the 14:03 candle came back
    at = datetime(2026, 11, 20, 14, 2, 37, tzinfo=UTC)

    assert wire.candle_at(lambda request: wire.json(rows), Symbol.BTC, at) is None


def test_candle_with_a_zero_price_is_refused(wire: Wire) -> None:
    rows = wire.body("candles_BTC-USD.json")
    rows[1][1] = Decimal(0)  # the low of the 14:02 candle
    at = datetime(2026, 11, 20, 14, 2, 37, tzinfo=UTC)

    with pytest.raises(SourceError) as refused:
        wire.candle_at(lambda request: wire.json(rows), Symbol.BTC, at)
    assert refused.value.reason == "bad_price"


def test_candle_request_refused_by_coinbase_raises(wire: Wire) -> None:
    at = datetime(2026, 11, 20, 14, 2, 37, tzinfo=UTC)

    with pytest.raises(SourceError) as refused:
        wire.candle_at(candles(wire, "candles_bad_range.json", 400), Symbol.BTC, at)
    assert refused.value.reason == "http_status"


def test_candle_for_trx_is_unsupported_without_a_request(wire: Wire) -> None:
    with pytest.raises(SourceError) as refused:
        wire.candle_at(wire.timeout, Symbol.TRX, NOW)
    assert refused.value.reason == "unsupported_symbol"
    assert wire.requests == []


def test_candle_at_needs_an_aware_time(wire: Wire) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        wire.candle_at(wire.timeout, Symbol.BTC, datetime(2026, 11, 20, 14, 2, 37))
