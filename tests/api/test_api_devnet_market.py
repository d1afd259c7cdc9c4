"""Devnet market controls (issue 14): on the devnet an operator moves a static rate while Kassa
runs (``POST /v1/admin/rates``), the next quote uses it and the refresher keeps it; elsewhere the
route does not exist (404 ``devnet_market_disabled``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kassa.api import create_app
from kassa.api.idempotency import REPLAYED_HEADER
from kassa.config import Settings
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa.pricing.tables import rate_sample
from kassa_dev.scenario import ScenarioClock

if TYPE_CHECKING:
    from tests.api.conftest import Api

PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"


@pytest.fixture
def devnet(api: Api) -> Iterator[tuple[Api, PricingService]]:
    """An app on the devnet's scenario clock, and the refresher's pricing service (the static
    source at its configured demo rates: BTC $60 000)."""
    clock = ScenarioClock()
    pricing = PricingService(api.db, clock, PricingSettings())
    pricing.refresh()
    with TestClient(create_app(Settings(), database=api.db, clock=clock)) as client:
        yield type(api)(client, api.db, api.clock), pricing


def quoted_rate(api: Api) -> str:
    body = {"external_id": "m", "asset": "BTC", "address": PAYEE, "amount": api.usd("30")}
    quote = api.post("/v1/withdrawals/quote", body, key=None)
    assert quote.status_code == 200, quote.text
    rate: str = quote.json()["decision"]["breakdown"]["rate"]
    return rate


def samples(api: Api) -> int:
    with api.db.transaction() as conn:
        count: int = conn.execute(select(func.count()).select_from(rate_sample)).scalar_one()
        return count


def test_a_rate_set_while_running_prices_the_next_quote_and_outlives_the_refresher(
    devnet: tuple[Api, PricingService],
) -> None:
    api, pricing = devnet
    api.account("m", funds="100")
    assert quoted_rate(api) == "60000"

    moved = api.post("/v1/admin/rates", {"symbol": "BTC", "usd_per_coin": "50000"})

    assert moved.status_code == 200, moved.text
    rate: dict[str, Any] = moved.json()
    assert (rate["symbol"], rate["ask"], rate["kind"]) == ("BTC", "50000", "live")
    assert [q["source"] for q in rate["quotes"]] == ["devnet-market"]
    assert quoted_rate(api) == "50000"
    pricing.refresh()  # the worker's next round: the static source serves the override
    assert quoted_rate(api) == "50000"
    current = api.get("/v1/rates/BTC").json()
    assert (current["ask"], [q["source"] for q in current["quotes"]]) == ("50000", ["static"])
    assert api.get("/v1/rates/ETH").json()["ask"] == "3000"  # other symbols untouched


def test_a_rate_is_set_once_per_key_and_bad_input_is_refused(
    devnet: tuple[Api, PricingService],
) -> None:
    api, _pricing = devnet
    body = {"symbol": "ETH", "usd_per_coin": "2500.5"}
    first = api.post("/v1/admin/rates", body, key="r-1")
    before = samples(api)

    again = api.post("/v1/admin/rates", body, key="r-1")

    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers[REPLAYED_HEADER] == "true"
    assert samples(api) == before
    for bad in ({"symbol": "DOGE", "usd_per_coin": "1"}, {"symbol": "BTC", "usd_per_coin": "0"}):
        api.problem(api.post("/v1/admin/rates", bad), 422, "validation_error")
    reader = api.key(["accounts:read"])
    api.problem(api.post("/v1/admin/rates", body, token=reader), 403, "forbidden")


def test_off_the_devnet_the_market_cannot_be_moved(api: Api) -> None:
    refused = api.post("/v1/admin/rates", {"symbol": "BTC", "usd_per_coin": "50000"})

    problem = api.problem(refused, 404, "devnet_market_disabled")
    assert "only be set by hand on the devnet" in problem["detail"]
