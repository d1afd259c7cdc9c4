"""A withdrawal quote over the API says where its network fee came from (issue 14): read live
from the Bitcoin node (bcoin regtest: no estimate, so the regtest fallback rate, times the
payout's size, plus the safety margin), or the configured estimate when the node does not
answer."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from kassa.api import create_app
from kassa.config import Settings
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    from tests.api.conftest import Api

    from kassa_dev.devnet.testing import BitcoinNode

PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"


def _api(harness: Api, btc: dict[str, Any]) -> Iterator[Api]:
    """The harness's kind of client on an app whose Bitcoin node is ``btc``."""
    db, clock = harness.db, harness.clock
    settings = Settings.model_validate({"chains": {"btc": btc}})
    with TestClient(create_app(settings, database=db, clock=clock)) as client:
        api = type(harness)(client, db, clock)
        api.account("9", funds="100")
        PricingService(
            db, clock, PricingSettings(static_rates={Symbol.BTC: Decimal("50000")})
        ).refresh([Symbol.BTC])
        yield api


def _quote(api: Api) -> dict[str, Any]:
    response = api.post(
        "/v1/withdrawals/quote",
        {"external_id": "9", "asset": "BTC", "address": PAYEE, "amount": api.usd("25")},
    )
    assert response.status_code == 200, response.text
    breakdown: dict[str, Any] = response.json()["decision"]["breakdown"]
    return breakdown


@pytest.fixture
def refused_api(api: Api) -> Iterator[Api]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield from _api(api, {"rpc_url": f"http://127.0.0.1:{port}", "rpc_api_key": "x"})


def test_a_node_that_does_not_answer_gives_the_configured_fee_marked_fallback(
    refused_api: Api,
) -> None:
    money = _quote(refused_api)
    assert money["network_fee_source"] == "fallback"
    assert money["network_fee_native"]["amount"] == "0.00002"  # the configured estimate


@pytest.mark.slow
@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_the_quote_reads_the_bitcoin_node(api: Api, bitcoin_node: BitcoinNode) -> None:
    btc = {"rpc_url": bitcoin_node.url, "rpc_api_key": bitcoin_node.api_key}
    for live_api in _api(api, btc):
        money = _quote(live_api)
    assert money["network_fee_source"] == "live"
    # 10 000 sat/kvB (regtest has no estimate) × 141 vB = 1 410 sat, +20 % = 1 692 sat.
    assert money["network_fee_native"]["amount"] == "0.00001692"
    # $25 − $5 = $20 at $50 000 = 40 000 sat, minus the fee.
    assert money["net_native"]["amount"] == "0.00038308"
