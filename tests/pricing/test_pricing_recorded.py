"""The whole pricing path with real source parsers: configured by name, fed the recorded
exchange answers through httpx's MockTransport, aggregated, stored and explained."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

RECORDED = Path(__file__).parent / "recorded"


def recorded_exchanges(*, down: frozenset[str] = frozenset()) -> httpx.MockTransport:
    """Route each exchange's URL to its recorded body; hosts in `down` answer a CDN 503 page."""

    def handle(request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        if any(name in host for name in down):
            page = (RECORDED / "bitstamp" / "cloudflare_503.html").read_bytes()
            return httpx.Response(503, content=page, headers={"content-type": "text/html"})
        if host == "api.exchange.coinbase.com" and path.endswith("/ticker"):
            product = path.split("/")[2]
            file = RECORDED / "coinbase" / f"ticker_{product}.json"
        elif host == "api.kraken.com" and path.endswith("/Ticker"):
            file = RECORDED / "kraken" / "ticker.json"
        elif host == "www.bitstamp.net" and "/ticker/" in path:
            file = RECORDED / "bitstamp" / f"ticker_{path.rstrip('/').split('/')[-1]}.json"
        elif host == "api.coingecko.com":
            file = RECORDED / "coingecko" / "simple_price.json"
        else:
            return httpx.Response(404, json={"message": "NotFound"})
        if not file.exists():
            return httpx.Response(404, json={"message": "NotFound"})
        return httpx.Response(
            200, content=file.read_bytes(), headers={"content-type": "application/json"}
        )

    return httpx.MockTransport(handle)


SETTINGS = PricingSettings(
    sources=["coinbase", "kraken", "bitstamp"],
    fallback_sources=["coingecko"],
    min_sources=2,
    max_quote_age_seconds=3600,
)


def test_recorded_exchanges_give_explained_rates(db: Database, clock: ManualClock) -> None:
    pricing = PricingService(db, clock, SETTINGS, transport=recorded_exchanges())
    result = pricing.refresh()
    assert set(result.samples) == set(Symbol), result.missing
    btc = result.samples[Symbol.BTC]
    assert set(btc.sources) >= {"coinbase", "kraken"}
    assert btc.market_bid <= btc.market_ask
    assert all(q.bid is not None for q in btc.quotes if q.accepted)
    # TRX is listed by Kraken only, so the fallback was asked for it, and only for it.
    trx = result.samples[Symbol.TRX]
    assert "coingecko" in [q.source for q in trx.quotes]
    assert "coingecko" not in [q.source for q in btc.quotes]
    assert result.samples[Symbol.USDT].pegged


def test_exchanges_down_fall_back_or_give_no_rate(db: Database, clock: ManualClock) -> None:
    down = frozenset({"coinbase", "kraken"})
    pricing = PricingService(db, clock, SETTINGS, transport=recorded_exchanges(down=down))
    result = pricing.refresh()
    # Bitstamp and CoinGecko still make two sources for BTC and ETH.
    assert {"bitstamp", "coingecko"} == set(result.samples[Symbol.BTC].sources)
    failed = {q.source: q.rejection for q in result.samples[Symbol.BTC].quotes if not q.accepted}
    assert failed == {"coinbase": "http_status", "kraken": "http_status"}
    # TRX has only CoinGecko left: one source is not enough.
    assert Symbol.TRX in result.missing
    assert "1 healthy quote(s), 2 needed" in result.missing[Symbol.TRX]

    everything = frozenset({"coinbase", "kraken", "bitstamp", "coingecko"})
    clock.advance(timedelta(minutes=10))
    dead = PricingService(db, clock, SETTINGS, transport=recorded_exchanges(down=everything))
    assert dead.refresh().samples == {}
