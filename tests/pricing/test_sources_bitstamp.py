"""Bitstamp source against recorded answers (parsers are tested on recorded responses;
zero and bad quotes are rejected, one failing pair never hides the others)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from kassa.pricing.model import Candle, Quote, SourceError, Symbol
from kassa.pricing.sources.bitstamp import BitstampSource

if TYPE_CHECKING:
    from tests.pricing.conftest import Handler, Wire

NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
LISTED = (Symbol.BTC, Symbol.ETH, Symbol.USDT)


@pytest.fixture
def wire(wire_class: type[Wire]) -> Wire:
    return wire_class("bitstamp", BitstampSource)


def tickers(wire: Wire, answers: Mapping[str, Handler] | None = None) -> Handler:
    """The recorded ticker of every pair, except the pairs `answers` answer otherwise."""

    def handler(request: httpx.Request) -> httpx.Response:
        _, api, v2, endpoint, pair, _ = request.url.path.split("/")
        assert (api, v2, endpoint) == ("api", "v2", "ticker")
        if answers and pair in answers:
            return answers[pair](request)
        return wire.recorded(f"ticker_{pair}.json")

    return handler


def answer(response: httpx.Response) -> Handler:
    return lambda request: response


def reasons(errors: Mapping[Symbol, SourceError]) -> dict[Symbol, str]:
    return {symbol: error.reason for symbol, error in errors.items()}


def test_recorded_tickers_give_exact_bid_ask_and_bitstamp_time_in_utc(wire: Wire) -> None:
    report = wire.fetch(tickers(wire), now=NOW)

    assert report.quotes == (
        Quote(
            "bitstamp",
            Symbol.BTC,
            bid=Decimal("104214"),
            ask=Decimal("104219"),
            observed_at=datetime(2026, 11, 20, 14, 3, 9, tzinfo=UTC),
        ),
        Quote(
            "bitstamp",
            Symbol.ETH,
            bid=Decimal("3881.3"),
            ask=Decimal("3881.6"),
            observed_at=datetime(2026, 11, 20, 14, 3, 7, tzinfo=UTC),
        ),
        Quote(
            "bitstamp",
            Symbol.USDT,
            bid=Decimal("1.00012"),
            ask=Decimal("1.00015"),
            observed_at=datetime(2026, 11, 20, 14, 2, 51, tzinfo=UTC),
        ),
    )
    assert all(q.observed_at.utcoffset() == timedelta(0) for q in report.quotes)


def test_trx_is_unsupported_and_never_asked(wire: Wire) -> None:
    report = wire.fetch(tickers(wire))

    assert reasons(report.errors) == {Symbol.TRX: "unsupported_symbol"}
    assert sorted(r.url.path for r in wire.requests) == [
        "/api/v2/ticker/btcusd/",
        "/api/v2/ticker/ethusd/",
        "/api/v2/ticker/usdtusd/",
    ]


def test_cloudflare_challenge_page_is_an_http_error(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("cloudflare_503.html", 503), LISTED)

    assert report.quotes == ()
    assert reasons(report.errors) == dict.fromkeys(LISTED, "http_status")
    assert "HTTP 503" in report.errors[Symbol.USDT].detail


def test_html_served_with_status_200_is_not_json(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("cloudflare_503.html", 200), LISTED)

    assert reasons(report.errors) == dict.fromkeys(LISTED, "not_json")


def test_a_pair_bitstamp_no_longer_serves_costs_only_that_symbol(wire: Wire) -> None:
    gone = answer(wire.recorded("not_found.html", 404))

    report = wire.fetch(tickers(wire, {"ethusd": gone}), LISTED)

    assert reasons(report.errors) == {Symbol.ETH: "http_status"}
    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.USDT]


def test_rate_limit_on_one_pair_keeps_the_others(wire: Wire) -> None:
    limited = answer(wire.recorded("rate_limited.json", 429))

    report = wire.fetch(tickers(wire, {"btcusd": limited}), LISTED)

    assert reasons(report.errors) == {Symbol.BTC: "http_status"}
    assert [q.symbol for q in report.quotes] == [Symbol.ETH, Symbol.USDT]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        pytest.param(
            {"status": "error", "reason": "Request rejected due to exceeded rate limit."},
            "exceeded rate limit",
            id="status-error",
        ),
        pytest.param({"error": "Market is in maintenance."}, "maintenance", id="error-key"),
    ],
)
def test_an_error_body_is_an_api_error(wire: Wire, body: dict[str, str], words: str) -> None:
    report = wire.fetch(tickers(wire, {"usdtusd": answer(wire.json(body))}), LISTED)

    assert reasons(report.errors) == {Symbol.USDT: "api_error"}
    assert words in report.errors[Symbol.USDT].detail
    assert len(report.quotes) == 2


@pytest.mark.parametrize("side", ["bid", "ask"])
@pytest.mark.parametrize("value", ["0", "0.00000", "-1.00012"])
def test_zero_or_negative_price_is_refused_for_that_symbol_only(
    wire: Wire, side: str, value: str
) -> None:
    bad = wire.body("ticker_usdtusd.json") | {side: value}

    report = wire.fetch(tickers(wire, {"usdtusd": answer(wire.json(bad))}), LISTED)

    assert reasons(report.errors) == {Symbol.USDT: "bad_price"}
    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.ETH]


def test_bid_above_ask_is_refused(wire: Wire) -> None:
    crossed = wire.body("ticker_btcusd.json") | {"bid": "104220"}

    report = wire.fetch(tickers(wire, {"btcusd": answer(wire.json(crossed))}), [Symbol.BTC])

    assert reasons(report.errors) == {Symbol.BTC: "bad_price"}
    assert report.quotes == ()


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda b: _without(b, "ask"), id="no-ask"),
        pytest.param(lambda b: _without(b, "bid") | {"best_bid": b["bid"]}, id="bid-renamed"),
        pytest.param(lambda b: _without(b, "timestamp"), id="no-timestamp"),
        pytest.param(lambda b: b | {"timestamp": "2026-11-20T14:03:09Z"}, id="timestamp-iso"),
        pytest.param(lambda b: b | {"timestamp": "1795183389.5"}, id="timestamp-fraction"),
        pytest.param(lambda b: b | {"timestamp": "1.795183389e9"}, id="timestamp-exponent"),
        pytest.param(lambda b: b | {"bid": ["104214"]}, id="bid-in-a-list"),
        pytest.param(lambda b: [b], id="wrapped-in-a-list"),
    ],
)
def test_missing_or_renamed_fields_are_a_bad_shape(
    wire: Wire, change: Callable[[dict[str, Any]], Any]
) -> None:
    changed = change(wire.body("ticker_btcusd.json"))

    report = wire.fetch(tickers(wire, {"btcusd": answer(wire.json(changed))}), [Symbol.BTC])

    assert reasons(report.errors) == {Symbol.BTC: "bad_shape"}


def test_timeout_on_one_pair_keeps_the_others(wire: Wire) -> None:
    report = wire.fetch(tickers(wire, {"ethusd": wire.timeout}), LISTED)

    assert reasons(report.errors) == {Symbol.ETH: "timeout"}
    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.USDT]


# Candles


def ohlc(wire: Wire, name: str = "ohlc_btcusd.json", status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v2/ohlc/btcusd/"
        return wire.recorded(name, status)

    return handler


def test_candle_containing_at_is_parsed_exactly(wire: Wire) -> None:
    at = datetime(2026, 11, 20, 14, 2, 59, 999999, tzinfo=UTC)

    candle = wire.candle_at(ohlc(wire), Symbol.BTC, at)

    assert candle == Candle(
        source="bitstamp",
        symbol=Symbol.BTC,
        opened_at=datetime(2026, 11, 20, 14, 2, tzinfo=UTC),
        seconds=60,
        open=Decimal("104172"),
        high=Decimal("104212"),
        low=Decimal("104161"),
        close=Decimal("104201"),
    )
    assert candle.opened_at <= at < candle.opened_at + timedelta(seconds=candle.seconds)
    [request] = wire.requests
    assert dict(request.url.params) == {"step": "60", "limit": "1", "start": "1795183320"}


def test_no_candle_for_a_quiet_minute_is_none(wire: Wire) -> None:
    at = datetime(2026, 11, 20, 14, 2, 37, tzinfo=UTC)

    assert wire.candle_at(ohlc(wire, "ohlc_btcusd_empty.json"), Symbol.BTC, at) is None


def test_a_later_candle_is_not_taken_for_the_wanted_minute(wire: Wire) -> None:
    # The 14:02 candle answers a question about 14:01:30 only if it contains it: it does not.
    at = datetime(2026, 11, 20, 14, 1, 30, tzinfo=UTC)

    assert wire.candle_at(ohlc(wire), Symbol.BTC, at) is None


def test_candle_error_body_raises_an_api_error(wire: Wire) -> None:
    with pytest.raises(SourceError) as refused:
        wire.candle_at(ohlc(wire, "rate_limited.json"), Symbol.BTC, NOW)
    assert refused.value.reason == "api_error"


def test_candle_without_data_is_a_bad_shape(wire: Wire) -> None:
    body = {"pair": "BTC/USD", "ohlc": []}  # not wrapped in "data"

    with pytest.raises(SourceError) as refused:
        wire.candle_at(lambda request: wire.json(body), Symbol.BTC, NOW)
    assert refused.value.reason == "bad_shape"


def test_candle_with_a_zero_close_is_refused(wire: Wire) -> None:
    body = wire.body("ohlc_btcusd.json")
    body["data"]["ohlc"][0]["close"] = "0"

    with pytest.raises(SourceError) as refused:
        wire.candle_at(lambda request: wire.json(body), Symbol.BTC, NOW)
    assert refused.value.reason == "bad_price"


def test_candle_for_trx_is_unsupported_without_a_request(wire: Wire) -> None:
    with pytest.raises(SourceError) as refused:
        wire.candle_at(wire.timeout, Symbol.TRX, NOW)
    assert refused.value.reason == "unsupported_symbol"
    assert wire.requests == []
