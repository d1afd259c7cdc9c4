"""CoinGecko source against recorded answers (parsers are tested on recorded responses;
zero and stale-without-a-time quotes are rejected). CoinGecko answers every coin in one body, so a
bad entry spoils only its own symbol."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from kassa.pricing.model import Quote, SourceError, Symbol
from kassa.pricing.sources.coingecko import CoinGeckoSource

if TYPE_CHECKING:
    from tests.pricing.conftest import Handler, Wire

NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)


@pytest.fixture
def wire(wire_class: type[Wire]) -> Wire:
    return wire_class("coingecko", CoinGeckoSource)


def prices(wire: Wire, change: Callable[[dict[str, Any]], Any] | None = None) -> Handler:
    """The recorded /simple/price answer, optionally changed first."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v3/simple/price"
        body = wire.body("simple_price.json")
        return wire.json(change(body) if change else body)

    return handler


def reasons(errors: Mapping[Symbol, SourceError]) -> dict[Symbol, str]:
    return {symbol: error.reason for symbol, error in errors.items()}


def test_recorded_prices_are_exact_spot_quotes_stamped_with_coingeckos_time(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("simple_price.json"), now=NOW)

    def spot(symbol: Symbol, usd: str, second: int) -> Quote:
        at = datetime(2026, 11, 20, 14, 2, second, tzinfo=UTC)
        return Quote("coingecko", symbol, Decimal(usd), Decimal(usd), at)

    assert report.quotes == (
        spot(Symbol.BTC, "104218", 42),
        spot(Symbol.ETH, "3881.47", 41),
        spot(Symbol.TRX, "0.287316", 35),
        spot(Symbol.USDT, "1.000142", 44),
    )
    assert report.errors == {}
    # JSON numbers arrive as the decimals written, never through a float.
    assert [str(q.bid) for q in report.quotes] == ["104218", "3881.47", "0.287316", "1.000142"]
    assert all(q.observed_at.utcoffset() == timedelta(0) for q in report.quotes)
    [request] = wire.requests
    assert dict(request.url.params) == {
        "ids": "bitcoin,ethereum,tron,tether",
        "vs_currencies": "usd",
        "include_last_updated_at": "true",
    }


def test_a_spot_price_is_both_bid_and_ask_so_it_is_never_crossed(wire: Wire) -> None:
    report = wire.fetch(prices(wire))

    assert all(q.bid == q.ask for q in report.quotes)
    assert len(report.quotes) == 4


def test_only_the_asked_coins_are_requested(wire: Wire) -> None:
    wire.fetch(prices(wire), [Symbol.TRX, Symbol.BTC])

    assert wire.requests[0].url.params["ids"] == "tron,bitcoin"


def test_a_coin_missing_from_the_answer_is_unsupported_and_the_rest_quoted(wire: Wire) -> None:
    def drop_tron(body: dict[str, Any]) -> Any:
        del body["tron"]
        return body

    report = wire.fetch(prices(wire, drop_tron))

    assert reasons(report.errors) == {Symbol.TRX: "unsupported_symbol"}
    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.ETH, Symbol.USDT]


def test_rate_limit_is_an_http_error(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("rate_limited.json", 429))

    assert reasons(report.errors) == dict.fromkeys(Symbol, "http_status")
    assert "HTTP 429" in report.errors[Symbol.BTC].detail


def test_an_error_status_body_sent_with_200_is_an_api_error(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("rate_limited.json", 200))

    assert reasons(report.errors) == dict.fromkeys(Symbol, "api_error")
    assert "429: You've exceeded the Rate Limit" in report.errors[Symbol.ETH].detail


def test_an_error_key_is_an_api_error(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.json({"error": "invalid vs_currency"}))

    assert reasons(report.errors) == dict.fromkeys(Symbol, "api_error")


def test_cloudflare_rate_limit_page_is_an_http_error(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("cloudflare_1015.html", 429))

    assert reasons(report.errors) == dict.fromkeys(Symbol, "http_status")


def test_html_served_with_status_200_is_not_json(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.recorded("cloudflare_1015.html", 200))

    assert reasons(report.errors) == dict.fromkeys(Symbol, "not_json")


@pytest.mark.parametrize("value", [Decimal(0), Decimal("0.0"), Decimal("-0.287316")])
def test_zero_or_negative_price_spoils_only_that_coin(wire: Wire, value: Decimal) -> None:
    def spoil(body: dict[str, Any]) -> Any:
        body["tron"]["usd"] = value
        return body

    report = wire.fetch(prices(wire, spoil))

    assert reasons(report.errors) == {Symbol.TRX: "bad_price"}
    assert [q.symbol for q in report.quotes] == [Symbol.BTC, Symbol.ETH, Symbol.USDT]


USD = Decimal(104218)
UPDATED = Decimal(1795183362)


@pytest.mark.parametrize(
    "bitcoin",
    [
        pytest.param({"USD": USD, "last_updated_at": UPDATED}, id="usd-renamed"),
        pytest.param({"usd": USD}, id="no-last-updated-at"),
        pytest.param({"usd": USD, "last_updated_at": "1795183362"}, id="time-as-string"),
        pytest.param({"usd": USD, "last_updated_at": UPDATED + Decimal("0.5")}, id="time-fraction"),
        pytest.param({"usd": None, "last_updated_at": UPDATED}, id="usd-null"),
        pytest.param(USD, id="coin-not-an-object"),
    ],
)
def test_missing_or_renamed_fields_spoil_only_that_coin(wire: Wire, bitcoin: Any) -> None:
    report = wire.fetch(prices(wire, lambda body: body | {"bitcoin": bitcoin}))

    assert reasons(report.errors) == {Symbol.BTC: "bad_shape"}
    assert len(report.quotes) == 3


def test_a_list_instead_of_an_object_is_a_bad_shape(wire: Wire) -> None:
    report = wire.fetch(lambda request: wire.json([]))

    assert reasons(report.errors) == dict.fromkeys(Symbol, "bad_shape")


def test_timeout_is_reported_for_every_symbol_not_raised(wire: Wire) -> None:
    report = wire.fetch(wire.timeout)

    assert report.quotes == ()
    assert reasons(report.errors) == dict.fromkeys(Symbol, "timeout")
