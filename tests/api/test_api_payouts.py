"""Refund and withdrawal requests over the API under the default policy: quotes, requests that
reserve the funds, refusals with the decision, cancellation, idempotency and access."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from kassa.api import create_app
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.config import Settings
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    from tests.api.conftest import Api

# A wallet outside Kassa (bcrt1q6rz28…cppk, used here before, is Kassa's own first deposit
# address: a refund there is refused).
SENDER = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"
PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"


def prices(api: Api, btc: str) -> None:
    PricingService(
        api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal(btc)})
    ).refresh([Symbol.BTC])


def top_up(api: Api, external_id: str, sats: int, txid: str = "cd" * 32) -> str:
    """A real watcher credits a BTC top-up from SENDER, as the deposit flow would."""
    address = api.post(f"/v1/accounts/{external_id}/deposit-addresses", {"chain": "btc"}).json()
    chain = FakeChain(Chain.BTC, api.clock.now() - timedelta(minutes=1), final_depth=1)
    transfer = ChainTransfer(
        Chain.BTC, "BTC", txid, 0, address["address"], sats, SENDER, SenderKind.KNOWN, True
    )
    chain.mine([transfer], seconds=30)
    pricing = PricingService(api.db, api.clock, PricingSettings(history_tolerance_seconds=3600))
    Watcher(api.db, api.clock, chain, pricing, WatcherConfig(Chain.BTC)).tick()
    [deposit] = [
        d
        for d in api.get(f"/v1/accounts/{external_id}/deposits").json()["deposits"]
        if d["txid"] == txid
    ]
    assert deposit["status"] == "credited", deposit
    deposit_id: str = deposit["id"]
    return deposit_id


def test_refund_worked_example_reserves_funds_and_pays_the_sender(api: Api) -> None:
    """docs/domain.md §7: 0.001 BTC at $60 000 credits $60.00; refunded ten days later at $50 000
    with a 2 000 sat network fee it pays 0.00118000 BTC to the sending address."""
    api.account("42")
    prices(api, "60000")
    deposit_id = top_up(api, "42", 100_000)
    assert api.available("42") == "60.00"

    api.clock.advance(timedelta(days=10))
    prices(api, "50000")
    quote = api.post("/v1/refunds/quote", {"external_id": "42", "deposit_id": deposit_id})
    assert quote.status_code == 200, quote.text
    body = quote.json()
    assert body["allowed"] is True
    money = body["decision"]["breakdown"]
    assert money["net_native"]["amount"] == "0.00118"
    assert api.available("42") == "60.00"  # a quote changes nothing

    created = api.post("/v1/refunds", {"external_id": "42", "deposit_id": deposit_id}, key="r-1")
    assert created.status_code == 201, created.text
    refund = created.json()
    assert refund["destination"] == SENDER
    assert refund["net_native"] == {"amount": "0.00118", "asset": "BTC"}
    assert refund["gross"] == {"amount": "60.00", "asset": "USD"}
    assert refund["status"] in ("approved", "pending_review")
    assert refund["decision"]["allowed"] is True
    assert api.available("42") == "0.00"  # reserved by a hold until paid

    again = api.post("/v1/refunds", {"external_id": "42", "deposit_id": deposit_id}, key="r-1")
    assert again.status_code == 201 and again.json()["id"] == refund["id"]

    fetched = api.get(f"/v1/refunds/{refund['id']}").json()
    assert fetched["history"][0]["to"] == refund["status"]

    cancelled = api.post(f"/v1/refunds/{refund['id']}/cancel", {"reason": "changed my mind"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert api.available("42") == "60.00"
    api.problem(
        api.post(f"/v1/refunds/{refund['id']}/cancel", {}), 409, "payout_request_not_pending"
    )


def test_refused_refund_explains_every_rule_and_changes_nothing(api: Api) -> None:
    api.account("7")
    prices(api, "60000")
    deposit_id = top_up(api, "7", 100_000)
    # Spend it all: nothing is left to refund.
    api.post("/v1/accounts/7/holds", {"amount": api.usd("60"), "expires_in_seconds": 60})
    refused = api.post("/v1/refunds", {"external_id": "7", "deposit_id": deposit_id}, key="x")
    body = api.problem(refused, 409, "refund_refused")
    assert body["decision"]["allowed"] is False
    assert any(not rule["passed"] for rule in body["decision"]["rules"])
    replay = api.post("/v1/refunds", {"external_id": "7", "deposit_id": deposit_id}, key="x")
    api.problem(replay, 409, "refund_refused")
    assert api.get("/v1/accounts/7/payouts").json()["requests"] == []


def test_withdrawal_default_policy_minimum_fee_and_address_checks(api: Api) -> None:
    api.account("9", funds="100")
    prices(api, "50000")
    base: dict[str, Any] = {"external_id": "9", "asset": "BTC", "address": PAYEE}

    small = api.post("/v1/withdrawals/quote", {**base, "amount": api.usd("19.99")}).json()
    assert small["allowed"] is False

    quote = api.post("/v1/withdrawals/quote", {**base, "amount": api.usd("25")}).json()
    assert quote["allowed"] is True
    money = quote["decision"]["breakdown"]
    # $25 − $5 flat fee = $20 at 50 000 = 40 000 sat, minus the 2 000 sat fee estimate.
    assert money["net_native"]["amount"] == "0.00038"

    made = api.post("/v1/withdrawals", {**base, "amount": api.usd("25")})
    assert made.status_code == 201, made.text
    assert made.json()["destination"] == PAYEE
    assert api.available("9") == "75.00"

    bad = api.post(
        "/v1/withdrawals", {**base, "address": PAYEE[:-1] + "x", "amount": api.usd("25")}
    )
    api.problem(bad, 422, "invalid_address")
    eth = api.post(
        "/v1/withdrawals", {**base, "address": "0x" + "11" * 20, "amount": api.usd("25")}
    )
    api.problem(eth, 422, "invalid_address")
    own = api.post("/v1/accounts/9/deposit-addresses", {"chain": "btc"}).json()["address"]
    mine = api.post("/v1/withdrawals", {**base, "address": own, "amount": api.usd("25")})
    api.problem(mine, 422, "destination_is_deposit_address")
    usd = api.post("/v1/withdrawals", {**base, "asset": "USD", "amount": api.usd("25")})
    api.problem(usd, 422, "asset_not_payable")


def test_another_accounts_requests_are_invisible(api: Api) -> None:
    api.account("a", funds="100")
    api.account("b")
    prices(api, "50000")
    made = api.post(
        "/v1/withdrawals",
        {"external_id": "a", "asset": "BTC", "address": PAYEE, "amount": api.usd("30")},
    ).json()
    bound = api.key(["accounts:read", "accounts:write"], account="b")
    api.problem(api.get(f"/v1/withdrawals/{made['id']}", bound), 404, "payout_request_not_found")
    api.problem(api.get(f"/v1/refunds/{made['id']}"), 404, "payout_request_not_found")


@pytest.mark.parametrize("preset", ["codexkey", "activkode"])
def test_the_configured_preset_decides(api: Api, preset: str) -> None:
    settings = Settings.model_validate({"policy": {"preset": preset}})
    with TestClient(create_app(settings, database=api.db, clock=api.clock)) as client:
        api = type(api)(client, api.db, api.clock)
        api.account("p", funds="100")
        prices(api, "50000")
        quote = api.post(
            "/v1/withdrawals/quote",
            {"external_id": "p", "asset": "BTC", "address": PAYEE, "amount": api.usd("30")},
        ).json()
        assert quote["decision"]["policy"] == preset
