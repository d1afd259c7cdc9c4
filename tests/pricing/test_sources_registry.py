"""The source registry, and the contract every HTTP source keeps whatever goes wrong on the wire
(one bad exchange must not hide the others, so a source reports, it never raises)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

import httpx
import pytest

from kassa.pricing.model import SourceError, Symbol
from kassa.pricing.sources import SOURCE_NAMES
from kassa.pricing.sources.base import CandleSource, RateSource
from kassa.pricing.sources.registry import UnknownSource, build_source

if TYPE_CHECKING:
    from tests.pricing.conftest import Wire

NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
UNLISTED: dict[str, set[Symbol]] = {
    "coinbase": {Symbol.TRX},
    "kraken": set(),
    "bitstamp": {Symbol.TRX},
    "binance": {Symbol.TRX},
    "coingecko": set(),
}
CANDLE_SOURCES = ("coinbase", "kraken", "bitstamp", "binance")


def built(name: str) -> RateSource:
    async def build() -> RateSource:
        async with httpx.AsyncClient() as client:
            return build_source(name, client)

    return asyncio.run(build())


def test_the_registry_knows_exactly_the_five_http_sources() -> None:
    assert SOURCE_NAMES == ("coinbase", "kraken", "bitstamp", "binance", "coingecko")


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_each_name_builds_a_rate_source_of_that_name(name: str) -> None:
    source = built(name)

    assert isinstance(source, RateSource)
    assert source.name == name
    assert isinstance(source, CandleSource) == (name in CANDLE_SOURCES)


@pytest.mark.parametrize("name", ["static", "Coinbase", "binance.com", ""])
def test_an_unknown_name_is_refused_with_the_known_ones_listed(name: str) -> None:
    with pytest.raises(UnknownSource) as refused:
        built(name)

    assert isinstance(refused.value, ValueError)
    assert refused.value.name == name
    assert "coinbase, kraken, bitstamp, binance, coingecko" in str(refused.value)


# The contract, for every source.


@pytest.fixture(params=SOURCE_NAMES)
def wire(request: pytest.FixtureRequest, wire_class: type[Wire]) -> Wire:
    name: str = request.param
    return wire_class(name, partial(build_source, name))


def listed(wire: Wire) -> set[Symbol]:
    return set(Symbol) - UNLISTED[wire.source]


def test_every_symbol_asked_is_either_quoted_or_explained(wire: Wire) -> None:
    def server_error(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="Internal Server Error")

    report = wire.fetch(server_error)

    assert report.quotes == ()
    assert set(report.errors) == set(Symbol)
    for symbol, error in report.errors.items():
        expected = "http_status" if symbol in listed(wire) else "unsupported_symbol"
        assert (error.source, error.reason) == (wire.source, expected)


def test_a_refused_connection_is_a_transport_error_not_an_exception(wire: Wire) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    report = wire.fetch(refused)

    assert {s for s, e in report.errors.items() if e.reason == "transport"} == listed(wire)


def test_a_timeout_is_reported_not_raised(wire: Wire) -> None:
    report = wire.fetch(wire.timeout)

    assert {s for s, e in report.errors.items() if e.reason == "timeout"} == listed(wire)


def test_asking_for_nothing_makes_no_request(wire: Wire) -> None:
    report = wire.fetch(wire.timeout, [])

    assert (report.quotes, dict(report.errors), wire.requests) == ((), {}, [])


def test_an_unlisted_symbol_alone_makes_no_request(wire: Wire) -> None:
    for symbol in UNLISTED[wire.source]:
        report = wire.fetch(wire.timeout, [symbol])
        assert report.errors[symbol].reason == "unsupported_symbol"
    assert wire.requests == []


@pytest.fixture(params=CANDLE_SOURCES)
def candle_wire(request: pytest.FixtureRequest, wire_class: type[Wire]) -> Wire:
    name: str = request.param
    return wire_class(name, partial(build_source, name))


def test_a_candle_timeout_raises_a_source_error(candle_wire: Wire) -> None:
    with pytest.raises(SourceError) as failed:
        candle_wire.candle_at(candle_wire.timeout, Symbol.BTC, NOW)
    assert (failed.value.source, failed.value.reason) == (candle_wire.source, "timeout")


def test_a_candle_answer_that_is_not_json_raises_a_source_error(candle_wire: Wire) -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html><body>Maintenance</body></html>")

    with pytest.raises(SourceError) as failed:
        candle_wire.candle_at(html, Symbol.ETH, NOW)
    assert failed.value.reason == "not_json"
