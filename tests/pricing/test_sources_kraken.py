"""Kraken source against recorded answers (parsers are tested on recorded responses;
zero and bad quotes are rejected). Kraken answers all pairs in one body, so a bad pair spoils only
its own quote, and a delisted pair must not take the others down with it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from kassa.pricing.model import Candle, Quote, SourceError, Symbol
from kassa.pricing.sources.kraken import KrakenSource

if TYPE_CHECKING:
    from tests.pricing.conftest import Handler, Wire

NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
RESULT_KEY = {
    "XBTUSD": "XXBTZUSD",
    "ETHUSD": "XETHZUSD",
    "TRXUSD": "TRXUSD",
    "USDTZUSD": "USDTZUSD",
}


@pytest.fixture
def wire(wire_class: type[Wire]) -> Wire:
    return wire_class("kraken", KrakenSource)


def ticker(wire: Wire, change: Callable[[dict[str, Any]], Any] | None = None) -> Handler:
    """The recorded Ticker answer for exactly the pairs asked, optionally changed first."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/0/public/Ticker"
        recorded = wire.body("ticker.json")
        asked = request.url.params["pair"].split(",")
        body = {
            "error": [],
            "result": {RESULT_KEY[p]: recorded["result"][RESULT_KEY[p]] for p in asked},
        }
        return wire.json(change(body) if change else body)

    return handler


def reasons(errors: Mapping[Symbol, SourceError]) -> dict[Symbol, str]:
    return {symbol: error.reason for symbol, error in errors.items()}


def test_recorded_ticker_gives_every_symbol_from_one_request(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("ticker.json"), now=NOW)

    # Kraken sends no time with its ticker: the quotes carry the moment of asking.
    assert report.quotes == (
        Quote("kraken", Symbol.BTC, Decimal("104221.70000"), Decimal("104221.80000"), NOW),
        Quote("kraken", Symbol.ETH, Decimal("3881.90000"), Decimal("3881.91000"), NOW),
        Quote("kraken", Symbol.TRX, Decimal("0.287390"), Decimal("0.287420"), NOW),
        Quote("kraken", Symbol.USDT, Decimal("1.00015000"), Decimal("1.00016000"), NOW),
    )
    assert report.errors == {}
    [request] = wire.requests
    assert request.url.path == "/0/public/Ticker"
    assert request.url.params["pair"] == "XBTUSD,ETHUSD,TRXUSD,USDTZUSD"
    assert all(q.observed_at.utcoffset() == timedelta(0) for q in report.quotes)


def test_only_the_asked_pairs_are_requested(wire: Wire) -> None:
    report = wire.fetch(ticker(wire), [Symbol.USDT, Symbol.ETH, Symbol.USDT])

    assert [q.symbol for q in report.quotes] == [Symbol.USDT, Symbol.ETH]
    assert wire.requests[0].url.params["pair"] == "USDTZUSD,ETHUSD"


def test_the_short_pair_name_is_accepted_as_a_result_key(wire: Wire) -> None:
    def rename(body: dict[str, Any]) -> Any:
        body["result"]["XBTUSD"] = body["result"].pop("XXBTZUSD")
        return body

    report = wire.fetch(ticker(wire, rename), [Symbol.BTC])

    assert [q.bid for q in report.quotes] == [Decimal("104221.70000")]


def test_a_delisted_pair_is_found_pair_by_pair_and_the_others_still_quoted(wire: Wire) -> None:
    recorded = ticker(wire)

    def trx_delisted(request: httpx.Request) -> httpx.Response:
        if "TRXUSD" in request.url.params["pair"].split(","):
            return wire.recorded("unknown_pair.json")
        return recorded(request)

    report = wire.fetch(trx_delisted)

    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.ETH, Symbol.USDT]
    assert reasons(report.errors) == {Symbol.TRX: "unsupported_symbol"}
    assert [r.url.params["pair"] for r in wire.requests] == [
        "XBTUSD,ETHUSD,TRXUSD,USDTZUSD",
        "XBTUSD",
        "ETHUSD",
        "TRXUSD",
        "USDTZUSD",
    ]


def test_an_unknown_single_pair_is_unsupported(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("unknown_pair.json"), [Symbol.TRX])

    assert reasons(report.errors) == {Symbol.TRX: "unsupported_symbol"}
    assert len(wire.requests) == 1


@pytest.mark.parametrize(
    ("recording", "words"),
    [
        ("too_many_requests.json", "EGeneral:Too many requests"),
        ("service_unavailable.json", "EService:Unavailable"),
    ],
)
def test_kraken_refusals_are_api_errors_for_every_symbol(
    wire: Wire, recording: str, words: str
) -> None:
    report = wire.fetch(lambda request: wire.recorded(recording))

    assert report.quotes == ()
    assert set(reasons(report.errors).values()) == {"api_error"}
    assert len(report.errors) == 4
    assert words in report.errors[Symbol.ETH].detail
    assert len(wire.requests) == 1  # a refusal other than an unknown pair is not retried


def test_warnings_do_not_spoil_the_answer(wire: Wire) -> None:
    report = wire.fetch(ticker(wire, lambda body: body | {"error": ["WGeneral:Deprecated"]}))

    assert len(report.quotes) == 4
    assert report.errors == {}


def test_cloudflare_error_page_is_an_http_error_for_every_symbol(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("cloudflare_520.html", 520))

    assert report.quotes == ()
    assert set(reasons(report.errors).values()) == {"http_status"}
    assert len(report.errors) == 4
    assert "HTTP 520" in report.errors[Symbol.BTC].detail


def test_html_served_with_status_200_is_not_json(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("cloudflare_520.html", 200))

    assert set(reasons(report.errors).values()) == {"not_json"}
    assert len(report.errors) == 4


@pytest.mark.parametrize("side", ["a", "b"])
@pytest.mark.parametrize("value", ["0.000000", "0", "-0.287390"])
def test_zero_or_negative_price_spoils_only_that_pair(wire: Wire, side: str, value: str) -> None:
    def spoil_trx(body: dict[str, Any]) -> Any:
        body["result"]["TRXUSD"][side][0] = value
        return body

    report = wire.fetch(ticker(wire, spoil_trx))

    assert reasons(report.errors) == {Symbol.TRX: "bad_price"}
    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.ETH, Symbol.USDT]


def test_bid_above_ask_is_refused(wire: Wire) -> None:
    def cross_eth(body: dict[str, Any]) -> Any:
        body["result"]["XETHZUSD"]["b"][0] = "3882.00000"
        return body

    report = wire.fetch(ticker(wire, cross_eth))

    assert reasons(report.errors) == {Symbol.ETH: "bad_price"}
    assert len(report.quotes) == 3


def _drop(path: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
    def change(body: dict[str, Any]) -> Any:
        node = body
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return body

    return change


def _rename_btc_bid(body: dict[str, Any]) -> Any:
    btc = body["result"]["XXBTZUSD"]
    btc["bid"] = btc.pop("b")
    return body


def _empty_btc_ask(body: dict[str, Any]) -> Any:
    body["result"]["XXBTZUSD"]["a"] = []
    return body


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_drop(("result", "XXBTZUSD")), id="pair-missing"),
        pytest.param(_drop(("result", "XXBTZUSD", "a")), id="ask-missing"),
        pytest.param(_rename_btc_bid, id="bid-renamed"),
        pytest.param(_empty_btc_ask, id="ask-empty"),
    ],
)
def test_missing_or_renamed_fields_spoil_only_that_pair(
    wire: Wire, change: Callable[[dict[str, Any]], Any]
) -> None:
    report = wire.fetch(ticker(wire, change))

    assert reasons(report.errors) == {Symbol.BTC: "bad_shape"}
    assert len(report.quotes) == 3


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"error": []}, id="no-result"),
        pytest.param({"error": "EGeneral:Internal error", "result": {}}, id="error-not-a-list"),
        pytest.param([], id="a-list"),
    ],
)
def test_a_body_without_the_kraken_envelope_is_a_bad_shape(wire: Wire, body: Any) -> None:
    report = wire.fetch(lambda request: wire.json(body))

    assert set(reasons(report.errors).values()) == {"bad_shape"}
    assert len(report.errors) == 4


def test_timeout_is_reported_for_every_symbol_not_raised(wire: Wire) -> None:
    report = wire.fetch(wire.timeout)

    assert report.quotes == ()
    assert set(reasons(report.errors).values()) == {"timeout"}
    assert len(report.errors) == 4


# Candles


def ohlc(wire: Wire, name: str = "ohlc_XBTUSD.json") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/0/public/OHLC"
        return wire.recorded(name)

    return handler


def test_candle_containing_at_is_parsed_exactly(wire: Wire) -> None:
    at = datetime(2026, 11, 20, 14, 2, 37, tzinfo=UTC)

    candle = wire.candle_at(ohlc(wire), Symbol.BTC, at)

    # OHLC rows are [time, open, high, low, close, vwap, volume, count].
    assert candle == Candle(
        source="kraken",
        symbol=Symbol.BTC,
        opened_at=datetime(2026, 11, 20, 14, 2, tzinfo=UTC),
        seconds=60,
        open=Decimal("104190.1"),
        high=Decimal("104230.0"),
        low=Decimal("104188.4"),
        close=Decimal("104221.8"),
    )
    assert candle.opened_at <= at < candle.opened_at + timedelta(seconds=candle.seconds)
    [request] = wire.requests
    assert dict(request.url.params) == {
        "pair": "XBTUSD",
        "interval": "1",
        "since": str(int(datetime(2026, 11, 20, 14, 1, tzinfo=UTC).timestamp())),
    }


def test_a_minute_older_than_krakens_720_candles_has_none(wire: Wire) -> None:
    # Kraken ignores an old `since` and sends its latest candles, none of which contains `at`.
    at = datetime(2026, 11, 19, 20, 15, tzinfo=UTC)

    assert wire.candle_at(ohlc(wire), Symbol.BTC, at) is None


def test_no_rows_means_no_candle(wire: Wire) -> None:
    empty = {"error": [], "result": {"XXBTZUSD": [], "last": Decimal(1795183320)}}

    candle = wire.candle_at(lambda r: wire.json(empty), Symbol.BTC, NOW)

    assert candle is None


def test_candle_refusal_raises_an_api_error(wire: Wire) -> None:
    with pytest.raises(SourceError) as refused:
        wire.candle_at(ohlc(wire, "too_many_requests.json"), Symbol.BTC, NOW)
    assert refused.value.reason == "api_error"


def test_candle_row_with_a_negative_price_is_refused(wire: Wire) -> None:
    body = wire.body("ohlc_XBTUSD.json")
    body["result"]["XXBTZUSD"][0][4] = "-104221.8"

    with pytest.raises(SourceError) as refused:
        wire.candle_at(
            lambda r: wire.json(body), Symbol.BTC, datetime(2026, 11, 20, 14, 2, 37, tzinfo=UTC)
        )
    assert refused.value.reason == "bad_price"


def test_candle_row_too_short_is_a_bad_shape(wire: Wire) -> None:
    body = wire.body("ohlc_XBTUSD.json")
    body["result"]["XXBTZUSD"][0] = body["result"]["XXBTZUSD"][0][:3]

    with pytest.raises(SourceError) as refused:
        wire.candle_at(lambda r: wire.json(body), Symbol.BTC, NOW)
    assert refused.value.reason == "bad_shape"
