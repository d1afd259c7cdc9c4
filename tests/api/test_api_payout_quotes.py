"""Binding quotes over the API (issue 14 item 1): a quote has an id and an expiry, and a request
naming it commits exactly its figures — the rate, the fee charged, the net USD and the net coins
— even after the market moved; an expired, used, foreign or mismatching quote is refused."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import update

from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.deposits.fake import FakeChain
from kassa.deposits.settings import ChainsSettings
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.money import Asset
from kassa.payouts.fee_quotes import FeeQuotes, QuotedFee
from kassa.payouts.model import FEE_ABOVE_QUOTE
from kassa.payouts.settings import PayoutSettings
from kassa.payouts.tables import payout_request
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    from tests.api.conftest import Api

SENDER = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"
PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"
TTL = timedelta(minutes=10)  # [payouts.quotes] ttl_seconds, default


def prices(api: Api, btc: str) -> None:
    PricingService(
        api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal(btc)})
    ).refresh([Symbol.BTC])


def top_up(api: Api, external_id: str, sats: int) -> str:
    """A real watcher credits a BTC top-up from SENDER."""
    address = api.post(f"/v1/accounts/{external_id}/deposit-addresses", {"chain": "btc"}).json()
    chain = FakeChain(Chain.BTC, api.clock.now() - timedelta(minutes=1), final_depth=1)
    transfer = ChainTransfer(
        Chain.BTC, "BTC", "cd" * 32, 0, address["address"], sats, SENDER, SenderKind.KNOWN, True
    )
    chain.mine([transfer], seconds=30)
    pricing = PricingService(api.db, api.clock, PricingSettings(history_tolerance_seconds=3600))
    Watcher(api.db, api.clock, chain, pricing, WatcherConfig(Chain.BTC)).tick()
    [deposit] = api.get(f"/v1/accounts/{external_id}/deposits").json()["deposits"]
    assert deposit["status"] == "credited", deposit
    return str(deposit["id"])


def withdrawal(api: Api, amount: str = "30", external_id: str = "a") -> dict[str, Any]:
    return {
        "external_id": external_id,
        "asset": "BTC",
        "address": PAYEE,
        "amount": api.usd(amount),
    }


def quote(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    made = api.post(path, body)
    assert made.status_code == 200, made.text
    answer: dict[str, Any] = made.json()
    assert answer["allowed"] is True, answer
    return answer


def committed(request: dict[str, Any]) -> dict[str, Any]:
    """A request's figures, named as in its quote's breakdown."""
    return {
        "gross_usd": request["gross"],
        "network_fee_charged_usd": request["network_fee"],
        "net_usd": request["net"],
        "net_native": request["net_native"],
        "network_fee_native": request["network_fee_native"],
        "rate_lock_id": request["rate_lock_id"],
    }


def quoted(answer: dict[str, Any]) -> dict[str, Any]:
    """The same figures as the quote showed them."""
    b = answer["decision"]["breakdown"]
    return {name: b[name] for name in COMMITTED}


COMMITTED = (
    "gross_usd",
    "network_fee_charged_usd",
    "net_usd",
    "net_native",
    "network_fee_native",
    "rate_lock_id",
)


def test_a_withdrawal_commits_its_quote_after_the_market_moved(api: Api) -> None:
    api.account("a", funds="100")
    prices(api, "50000")
    offer = quote(api, "/v1/withdrawals/quote", withdrawal(api))
    assert offer["quote_id"]
    assert datetime.fromisoformat(offer["expires_at"]) == api.clock.now() + TTL
    # $30 − $5 flat = $25 at $50 000 = 50 000 sat, minus the 2 000 sat fee: 48 000 sat.
    assert offer["decision"]["breakdown"]["net_native"]["amount"] == "0.00048"

    prices(api, "40000")  # the market moves before the customer confirms
    api.clock.advance(TTL - timedelta(seconds=1))
    made = api.post("/v1/withdrawals", {**withdrawal(api), "quote_id": offer["quote_id"]})
    assert made.status_code == 201, made.text
    request = made.json()
    assert request["quote_id"] == offer["quote_id"]
    assert committed(request) == quoted(offer)
    assert request["decision"]["breakdown"]["rate"] == offer["decision"]["breakdown"]["rate"]
    assert api.available("a") == "70.00"

    again = api.post("/v1/withdrawals", {**withdrawal(api), "quote_id": offer["quote_id"]})
    api.problem(again, 409, "quote_already_used")
    assert api.available("a") == "70.00"


def test_an_expired_quote_is_refused_and_nothing_is_reserved(api: Api) -> None:
    api.account("a", funds="100")
    prices(api, "50000")
    offer = quote(api, "/v1/withdrawals/quote", withdrawal(api))
    api.clock.advance(TTL + timedelta(seconds=1))
    late = api.post("/v1/withdrawals", {**withdrawal(api), "quote_id": offer["quote_id"]})
    assert "expired" in api.problem(late, 409, "quote_expired")["detail"]
    assert api.available("a") == "100.00"
    assert api.get("/v1/accounts/a/payouts").json()["requests"] == []


def test_a_quote_for_something_else_or_someone_else_is_refused(api: Api) -> None:
    api.account("a", funds="100")
    api.account("b", funds="100")
    prices(api, "50000")
    offer = quote(api, "/v1/withdrawals/quote", withdrawal(api))
    other = api.post("/v1/withdrawals", {**withdrawal(api, "31"), "quote_id": offer["quote_id"]})
    detail = api.problem(other, 409, "quote_mismatch")["detail"]
    assert "amount 31.00 was asked, 30.00 was quoted" in detail
    foreign = api.post(
        "/v1/withdrawals", {**withdrawal(api, external_id="b"), "quote_id": offer["quote_id"]}
    )
    api.problem(foreign, 404, "quote_not_found")
    unknown = {**withdrawal(api), "quote_id": "00000000-0000-4000-8000-000000000000"}
    api.problem(api.post("/v1/withdrawals", unknown), 404, "quote_not_found")
    assert api.available("a") == api.available("b") == "100.00"
    # The quote is still good for what it quoted.
    made = api.post("/v1/withdrawals", {**withdrawal(api), "quote_id": offer["quote_id"]})
    assert made.status_code == 201, made.text


def test_a_request_without_a_quote_commits_a_fresh_one(api: Api) -> None:
    api.account("a", funds="100")
    prices(api, "50000")
    made = api.post("/v1/withdrawals", withdrawal(api))
    assert made.status_code == 201, made.text
    request = made.json()
    assert request["quote_id"]
    assert request["net_native"] == {"amount": "0.00048", "asset": "BTC"}
    reuse = api.post("/v1/withdrawals", {**withdrawal(api), "quote_id": request["quote_id"]})
    api.problem(reuse, 409, "quote_already_used")


def test_a_refund_commits_its_quote_and_a_quote_whose_figures_changed_is_refused(
    api: Api,
) -> None:
    """docs/domain.md §7: 0.001 BTC credited $60.00 at $60 000; refunded at $50 000 with a
    2 000 sat fee: 0.00118000 BTC. The rate then falls; the quoted coins still go."""
    api.account("r")
    prices(api, "60000")
    deposit_id = top_up(api, "r", 100_000)
    api.clock.advance(timedelta(days=10))
    prices(api, "50000")
    body = {"external_id": "r", "deposit_id": deposit_id}
    offer = quote(api, "/v1/refunds/quote", body)
    assert offer["decision"]["breakdown"]["net_native"]["amount"] == "0.00118"
    prices(api, "40000")
    made = api.post("/v1/refunds", {**body, "quote_id": offer["quote_id"]})
    assert made.status_code == 201, made.text
    assert committed(made.json()) == quoted(offer)

    # A second quote, then part of the balance is spent: the refund would now be smaller
    # (only the unspent part is refundable), so the quote no longer holds.
    api.post(f"/v1/refunds/{made.json()['id']}/cancel", {})
    second = quote(api, "/v1/refunds/quote", body)
    spent = api.post("/v1/withdrawals", {**withdrawal(api, "20", "r")})
    assert spent.status_code == 201, spent.text
    late = api.post("/v1/refunds", {**body, "quote_id": second["quote_id"]})
    assert "no longer hold" in api.problem(late, 409, "quote_mismatch")["detail"]


def test_an_operator_lets_a_payout_pay_a_fee_above_its_quote_only_when_it_waits_on_it(
    api: Api,
) -> None:
    """The worker's side is in tests/payouts/worker and on regtest; here the admin route."""
    api.account("a", funds="100")
    prices(api, "50000")
    made = api.post("/v1/withdrawals", withdrawal(api)).json()
    path = f"/v1/admin/payouts/{made['id']}/approve-fee"
    api.problem(api.post(path, {}), 409, "payout_request_not_pending")
    with api.db.transaction() as conn:
        conn.execute(
            update(payout_request)
            .where(payout_request.c.id == uuid.UUID(made["id"]))
            .values(status="approved", wait_reason=f"{FEE_ABOVE_QUOTE}: the chain asks more")
        )
    approved = api.post(path, {"note": "fee spike"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["fee_approved_by"] == body["history"][-1]["actor"]
    assert body["wait_reason"] is None
    assert body["history"][-1]["reason"].endswith("paid by the house: fee spike")
    assert body["net_native"] == made["net_native"]  # the committed coins stand


class _Asked(FeeQuotes):
    """The fee reader without a node (the configured estimate), remembering whom it was asked
    to price: the real `FeeQuotes`, watched."""

    def __init__(self) -> None:
        super().__init__(PayoutSettings(), ChainsSettings())
        self.destinations: list[str | None] = []

    def fee(self, coin: Asset, destination: str | None) -> QuotedFee:
        self.destinations.append(destination)
        return super().fee(coin, destination)


def test_a_refund_without_a_quote_prices_the_fee_to_the_wallet_the_money_came_from(
    api: Api,
) -> None:
    """A refund goes back to the top-up's sender, and a fee depends on the destination (a first
    token transfer to an empty account costs about twice a repeat one): the fee read for a refund
    made without a quote is the fee to that sender, as its quote's would be."""
    asked = _Asked()
    state = api.client.app.state  # type: ignore[attr-defined]
    state.kassa = replace(state.kassa, payouts=replace(state.kassa.payouts, fee_quotes=asked))
    api.account("r")
    prices(api, "60000")
    deposit_id = top_up(api, "r", 100_000)
    body = {"external_id": "r", "deposit_id": deposit_id}
    assert quote(api, "/v1/refunds/quote", body)["decision"]["allowed"]
    made = api.post("/v1/refunds", body)
    assert made.status_code == 201, made.text
    assert asked.destinations == [SENDER, SENDER]
