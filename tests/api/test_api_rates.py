"""GET /v1/rates and /v1/rates/{asset}: stored rates with the quotes behind them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    from tests.api.conftest import Api


def refresh(api: Api, **rates: str) -> None:
    settings = PricingSettings(static_rates={Symbol(k): Decimal(v) for k, v in rates.items()})
    PricingService(api.db, api.clock, settings).refresh()


def test_current_rates_list_the_quotes_behind_them(api: Api) -> None:
    refresh(api, BTC="60000.5", ETH="3000", USDT="0.9990")
    token = api.key(["accounts:read"])
    body = api.get("/v1/rates", token).json()
    by_symbol = {rate["symbol"]: rate for rate in body["rates"]}
    assert set(by_symbol) == {"BTC", "ETH", "USDT"}
    btc = by_symbol["BTC"]
    assert btc["bid"] == btc["ask"] == "60000.5"
    assert btc["sources"] == ["static"]
    assert btc["quotes"] == [
        {
            "source": "static",
            "bid": "60000.5",
            "ask": "60000.5",
            "observed_at": "2026-11-20T14:03:11Z",
            "accepted": True,
            "rejection": None,
            "detail": None,
        }
    ]
    assert by_symbol["USDT"]["pegged"] is True and by_symbol["USDT"]["bid"] == "1"
    assert by_symbol["USDT"]["market_bid"] == "0.999"
    assert body["unavailable"] == [{"symbol": "TRX", "reason": "no TRX rate has been recorded yet"}]


def test_one_asset_now_and_at_a_time(api: Api) -> None:
    refresh(api, BTC="60000")
    first = api.clock.now()
    api.clock.advance(timedelta(minutes=10))
    refresh(api, BTC="61000")

    now = api.get("/v1/rates/BTC").json()
    assert now["bid"] == "61000"
    at = api.get("/v1/rates/BTC", params={"at": "2026-11-20T14:04:00Z"}).json()
    assert at["bid"] == "60000"
    assert at["sampled_at"] == first.isoformat().replace("+00:00", "Z")
    # Token assets are priced by their market symbol.
    refresh(api, USDT="1")
    assert api.get("/v1/rates/USDT-TRC20").json()["symbol"] == "USDT"


def test_no_rate_is_a_503_that_explains(api: Api) -> None:
    body = api.problem(api.get("/v1/rates/ETH"), 503, "no_rate")
    assert "no ETH rate has been recorded yet" in body["detail"]
    refresh(api, ETH="3000")
    far = api.get("/v1/rates/ETH", params={"at": "2026-01-01T00:00:00Z"})
    assert "no candle source is configured" in api.problem(far, 503, "no_rate")["detail"]
    api.clock.advance(timedelta(minutes=6))
    stale = api.problem(api.get("/v1/rates/ETH"), 503, "no_rate")
    assert "nothing is valued at a stale rate" in stale["detail"]


def test_bad_asset_and_time_are_refused(api: Api) -> None:
    api.problem(api.get("/v1/rates/DOGE"), 422, "unknown_symbol")
    api.problem(api.get("/v1/rates/BTC", params={"at": "yesterday"}), 422, "invalid_time")
    naive = api.problem(
        api.get("/v1/rates/BTC", params={"at": "2026-11-20T14:00:00"}), 422, "invalid_time"
    )
    assert "no UTC offset" in naive["detail"]


def test_rates_need_a_key(api: Api) -> None:
    response = api.client.get("/v1/rates")
    api.problem(response, 401, "unauthenticated")
