"""The product's own policy (docs/domain.md §6-§7 "Default" and the worked example), clause by
clause, through the HTTP API: real top-ups credited by the watcher, usage, activations, account
states, quotes and requests. Every figure is computed by hand in the comments (fees:
conftest.FEES)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from kassa.payouts.tables import payout_request

if TYPE_CHECKING:
    from tests.policy_api.conftest import PolicyApi, World

REFUND_RULES = [
    "refunds_enabled",
    "refund_window",
    "one_refund_per_topup",
    "no_pending_refund",
    "no_open_dispute",
    "usage_quiet_period",
    "account_state",
    "refundable_amount",
    "minimum_amount",
    "origin_address",
    "net_positive",
]


@pytest.fixture
def api(world: World) -> PolicyApi:
    return world.app("default")


def test_worked_example_0_001_btc_at_60000_refunded_ten_days_later_pays_0_00118_btc(
    api: PolicyApi, world: World
) -> None:
    """docs/domain.md §7, the worked example: a top-up of 0.00100000 BTC at BTC = $60 000 credits
    $60.00; refunded ten days later at BTC = $50 000 with a network fee of 2 000 sat, it pays
    60.00 / 50 000 = 0.00120000 BTC − 0.00002000 = 0.00118000 BTC to the sending address."""
    api.account("42")
    topup = api.top_up("42", "0.001")  # BTC is at $60 000
    # 100 000 sat × $60 000 / 10^8 = $60.00, at the rate of the payment time.
    assert topup["usd_value"] == {"amount": "60.00", "asset": "USD"}
    assert Decimal(topup["rate_lock"]["rate"]) == 60_000
    assert api.available("42") == "60.00"

    world.advance(timedelta(days=10))
    world.prices(btc="50000")
    decision = api.refund_quote("42", topup["id"])

    assert decision["allowed"] is True
    money = api.money(decision)
    assert money["gross_usd"] == "60.00 USD"
    assert Decimal(str(money["rate"])) == 50_000
    assert money["network_fee_native"] == "0.00002 BTC"
    assert money["network_fee_usd"] == "1.00 USD"  # 2 000 sat × $50 000 / 10^8
    assert money["network_fee_charged_usd"] == "1.00 USD"
    assert money["net_usd"] == "59.00 USD"  # $60 − $1
    assert money["net_native"] == "0.00118 BTC"  # 120 000 sat − 2 000 sat
    assert money["destination"] == "original_wallet"
    assert decision["needs_review"] is False
    assert api.available("42") == "60.00"  # a quote changes nothing

    refund = api.ok(api.refund("42", topup["id"]), 201)

    assert refund["status"] == "approved"  # the default policy asks for no review
    assert refund["destination"] == api.SENDER["btc"]
    assert refund["gross"] == {"amount": "60.00", "asset": "USD"}
    assert refund["network_fee"] == {"amount": "1.00", "asset": "USD"}
    assert refund["net"] == {"amount": "59.00", "asset": "USD"}
    assert refund["net_native"] == {"amount": "0.00118", "asset": "BTC"}
    assert api.available("42") == "0.00"  # the $60 is reserved until paid
    # The payout rate is locked with the request: a later move of BTC changes nothing.
    world.prices(btc="40000")
    again = api.ok(api.get(f"/v1/refunds/{refund['id']}"))
    assert again["net_native"] == {"amount": "0.00118", "asset": "BTC"}
    listed = api.ok(api.get("/v1/accounts/42/payouts"))["requests"]
    assert [r["id"] for r in listed] == [refund["id"]]


def test_refunds_go_back_to_the_originating_wallet_only(api: PolicyApi) -> None:
    """docs/domain.md §7 Default: refunds are paid to the originating wallet — a BTC payment whose
    inputs came from several addresses has no single wallet to go back to."""
    api.account("7")
    topup = api.top_up("7", "0.001", ambiguous=True)

    decision = api.refund_quote("7", topup["id"])

    assert api.refused(decision) == ["origin_address"]
    assert "several addresses" in api.rule(decision, "origin_address")["reason"]
    assert decision["overridable"] is False  # nobody can invent the sender
    refused = api.problem(api.refund("7", topup["id"]), 409, "refund_refused")
    assert api.refused(refused["decision"]) == ["origin_address"]
    assert api.ok(api.get("/v1/accounts/7/payouts"))["requests"] == []
    assert api.available("7") == "60.00"


def test_refund_valued_in_usd_at_payment_time_converted_at_the_refund_date_rate(
    api: PolicyApi, world: World
) -> None:
    """docs/domain.md §7 Default: refunds are worth the USD credited at payment time, converted at
    the refund-date rate, network fee deducted; docs/domain.md §2: rounding favours the house."""
    api.account("r")
    btc = api.top_up("r", "0.001")  # $60.00 at $60 000
    eth = api.top_up("r", "0.02", "ETH")  # 0.02 ETH × $3 000 = $60.00
    usdt = api.top_up("r", "25", "USDT-TRC20")  # 25 USDT × $1 = $25.00
    world.advance(timedelta(days=3))
    world.prices(btc="75000", eth="2500")

    rose = api.money(api.refund_quote("r", btc["id"]))
    # BTC rose: $60 / $75 000 = 80 000 sat; minus 2 000 sat = 78 000 sat. The fee is $1.50.
    assert rose["gross_usd"] == "60.00 USD"
    assert rose["net_native"] == "0.00078 BTC"
    assert rose["network_fee_usd"] == "1.50 USD"
    assert rose["net_usd"] == "58.50 USD"
    in_eth = api.money(api.refund_quote("r", eth["id"]))
    # $60 / $2 500 = 0.024 ETH; minus the 0.0004 ETH fee = 0.0236 ETH (fee $1.00).
    assert in_eth["net_native"] == "0.0236 ETH"
    assert in_eth["net_usd"] == "59.00 USD"
    in_usdt = api.money(api.refund_quote("r", usdt["id"]))
    # The fee is burnt TRX: 15 TRX × $0.25 = $3.75; $25 − $3.75 = 21.25 USDT.
    assert in_usdt["network_fee_native"] == "15.00 TRX"
    assert in_usdt["net_native"] == "21.25 USDT-TRC20"

    # A rate that does not divide evenly, with a 1 500 sat fee estimate.
    odd = world.app("default", fees={"BTC": "0.000015"})
    world.prices(btc="70000")
    uneven = odd.money(odd.refund_quote("r", btc["id"]))
    # $60 / $70 000 = 0.000857142857… BTC → 85 714 sat (down); minus 1 500 = 84 214 sat.
    assert uneven["net_native"] == "0.00084214 BTC"
    # 1 500 sat × $70 000 = $1.05 exactly. The net is what the 84 214 sat are worth at the
    # rate, $58.9498 (issue 14 item 4: it read $58.95); the fee charged is the rest.
    assert uneven["network_fee_usd"] == "1.05 USD"
    assert uneven["net_usd"] == "58.9498 USD"
    assert uneven["network_fee_charged_usd"] == "1.0502 USD"


def test_only_the_unused_part_of_a_top_up_is_refunded(api: PolicyApi, world: World) -> None:
    """Kassa default (§7 is silent): "only the unused part of a top-up is refundable" — what is
    unused is min(this top-up's USD, the available balance). Usage and a pending activation
    both reduce it; cancelling the activation gives its price back."""
    api.account("u")
    topup = api.top_up("u", "0.001")  # $60.00
    batch = api.use("u", "20.00", "10.00", "5.00")
    assert batch["charged"] == {"amount": "35.00", "asset": "USD"}
    world.prices(btc="50000")

    after_usage = api.refund_quote("u", topup["id"])
    # $60 − $35 = $25 → $25 / $50 000 = 50 000 sat; minus 2 000 sat = 48 000 sat.
    assert api.money(after_usage)["gross_usd"] == "25.00 USD"
    assert api.money(after_usage)["net_native"] == "0.00048 BTC"
    assert "the unused balance is $25.00" in api.rule(after_usage, "refundable_amount")["reason"]

    activation = api.activate("u", "5.00")
    reserved = api.money(api.refund_quote("u", topup["id"]))
    # $25 − $5 reserved = $20 → 40 000 sat; minus 2 000 sat = 38 000 sat.
    assert reserved["gross_usd"] == "20.00 USD"
    assert reserved["net_native"] == "0.00038 BTC"
    api.ok(api.activation("u", activation["id"], "cancel"))
    assert api.money(api.refund_quote("u", topup["id"]))["gross_usd"] == "25.00 USD"


def test_refund_refused_when_the_network_fee_eats_it_every_rule_listed(
    api: PolicyApi, world: World
) -> None:
    """docs/domain.md §7: every decision lists the rules it applied and why; Kassa: a refund must
    be worth more than its network fee."""
    api.account("f")
    topup = api.top_up("f", "0.001")  # $60.00
    api.use("f", "59.50")
    world.prices(btc="50000")

    refused = api.problem(api.refund("f", topup["id"]), 409, "refund_refused")

    decision = refused["decision"]
    # $0.50 / $50 000 = 1 000 sat; minus 2 000 sat = −1 000 sat.
    assert api.money(decision)["net_native"] == "-0.00001 BTC"
    assert api.money(decision)["net_usd"] == "-0.50 USD"
    assert api.refused(decision) == ["net_positive"]
    assert "Nothing would be paid out" in api.rule(decision, "net_positive")["reason"]
    assert [r["rule_id"] for r in decision["rules"]] == REFUND_RULES
    assert all(r["reason"] and r["clause"] for r in decision["rules"])
    assert refused["detail"].startswith("Refused: Nothing would be paid out")
    assert api.ok(api.get("/v1/accounts/f/payouts"))["requests"] == []
    assert api.available("f") == "0.50"


def test_a_refused_refund_retried_under_its_key_is_the_same_refusal(api: PolicyApi) -> None:
    """docs/domain.md §3: a request repeated with its key gets the stored result; §7: the refusal
    carries every rule and why. The balance is topped up between the two tries: the retry must still
    get the first answer (409 with its decision), not a new refund.

    Fails today: `RefundRefused` is not a recorded error, so the refusal stored under the key by
    `Payouts.request_refund` is rolled back and the retry decides afresh (201)."""
    api.account("i")
    topup = api.top_up("i", "0.001")  # $60.00
    api.use("i", "60.00")
    first = api.problem(api.refund("i", topup["id"], key="refund-1"), 409, "refund_refused")
    api.credit("i", "60.00", "goodwill")

    retry = api.refund("i", topup["id"], key="refund-1")

    again = api.problem(retry, 409, "refund_refused")
    assert again["decision"] == first["decision"]


def test_withdrawals_need_a_20_dollar_minimum_within_the_balance_in_deposit_assets(
    api: PolicyApi, world: World
) -> None:
    """docs/domain.md §7 Default: withdrawals are at least $20; §3: a customer's available balance
    never goes below zero; §1: customers pay with BTC, ETH, USDT-ERC20 or USDT-TRC20 — TRX is
    not one of the withdrawal assets."""
    api.account("w", funds="30.00")
    world.prices(btc="50000")

    below = api.withdrawal_quote("w", "19.99")
    at = api.withdrawal_quote("w", "20.00")
    too_much = api.withdrawal_quote("w", "30.01")
    in_trx = api.withdrawal_quote("w", "30.00", "TRX")

    assert api.refused(below) == ["minimum_amount"]
    assert "below the $20.00 minimum" in api.rule(below, "minimum_amount")["reason"]
    api.problem(api.withdraw("w", "19.99"), 409, "withdrawal_refused")
    assert at["allowed"] is True
    # $20 − $5 = $15 → 30 000 sat; minus 2 000 sat = 28 000 sat.
    assert api.money(at)["net_native"] == "0.00028 BTC"
    assert api.refused(too_much) == ["sufficient_balance"]
    reason = api.rule(too_much, "sufficient_balance")["reason"]
    assert "exceeds the available balance of $30.00" in reason
    assert api.refused(in_trx) == ["withdrawal_asset"]


def test_withdrawals_charge_a_5_dollar_flat_fee_and_subtract_the_network_fee(
    api: PolicyApi, world: World
) -> None:
    """docs/domain.md §7 Default: withdrawals charge a $5 flat fee and deduct the network fee —
    paid in BTC the fee is deducted in BTC; the gross is reserved until paid."""
    api.account("w", funds="150.00")
    world.prices(btc="50000")

    made = api.ok(api.withdraw("w", "100.00"), 201)

    money = api.money(made["decision"])
    assert money["flat_fee_usd"] == "5.00 USD"
    assert money["network_fee_charged_usd"] == "1.00 USD"  # 2 000 sat at $50 000
    # $100 − $5 = $95 → 190 000 sat; minus the 2 000 sat fee = 188 000 sat ($94.00).
    assert made["net_native"] == {"amount": "0.00188", "asset": "BTC"}
    assert made["net"] == {"amount": "94.00", "asset": "USD"}
    assert made["fees"] == {"amount": "5.00", "asset": "USD"}
    assert made["network_fee_native"] == {"amount": "0.00002", "asset": "BTC"}
    assert (made["status"], made["destination"]) == ("approved", api.PAYEE["btc"])
    assert api.available("w") == "50.00"  # $150 − $100 reserved
    cancelled = api.ok(api.post(f"/v1/withdrawals/{made['id']}/cancel", {}))
    assert cancelled["status"] == "cancelled"
    assert api.available("w") == "150.00"


def test_a_withdrawals_hold_is_not_settled_through_the_holds_api(
    api: PolicyApi, world: World
) -> None:
    """The reserve of a withdrawal is captured by the payout worker when the chain confirms
    it, and released by cancelling or rejecting the request; voiding or capturing it through
    the generic holds API would let the coins go out with the money back on the balance."""
    api.account("w", funds="150.00")
    made = api.ok(api.withdraw("w", "100.00"), 201)
    with world.db.transaction() as conn:
        hold_id = conn.execute(
            select(payout_request.c.hold_id).where(payout_request.c.id == uuid.UUID(made["id"]))
        ).scalar_one()
    for action in ("void", "capture"):
        api.problem(api.post(f"/v1/holds/{hold_id}/{action}", {}), 409, "hold_owned_by_payout")
    assert api.get(f"/v1/holds/{hold_id}").json()["status"] == "pending"
    assert api.available("w") == "50.00"


def test_withdrawal_network_fee_in_another_asset_is_deducted_at_its_usd_value(
    api: PolicyApi, world: World
) -> None:
    """docs/domain.md §7 Default, the network fee deducted, when the fee is not the payout asset:
    USDT on TRON burns TRX, USDT on Ethereum pays ETH; ETH itself pays ETH."""
    api.account("w", funds="300.00")
    world.prices(eth="2500")  # TRX stays at $0.25, USDT at $1.00

    trc20 = api.ok(api.withdraw("w", "100.00", "USDT-TRC20"), 201)
    # 15 TRX × $0.25 = $3.75; $100 − $5 − $3.75 = $91.25 → 91.25 USDT.
    assert trc20["network_fee_native"] == {"amount": "15.00", "asset": "TRX"}
    assert trc20["network_fee"] == {"amount": "3.75", "asset": "USD"}
    assert trc20["net_native"] == {"amount": "91.25", "asset": "USDT-TRC20"}
    assert trc20["destination"] == api.PAYEE["tron"]
    erc20 = api.withdrawal_quote("w", "100.00", "USDT-ERC20")
    # 0.0002 ETH × $2 500 = $0.50; $100 − $5 − $0.50 = 94.50 USDT.
    assert api.money(erc20)["net_native"] == "94.50 USDT-ERC20"
    eth = api.withdrawal_quote("w", "100.00", "ETH")
    # $95 / $2 500 = 0.038 ETH; minus 0.0004 ETH = 0.0376 ETH.
    assert api.money(eth)["net_native"] == "0.0376 ETH"
    assert api.available("w") == "200.00"


def test_frozen_account_gets_no_refund_and_no_withdrawal(api: PolicyApi) -> None:
    """docs/domain.md §4: a negative balance freezes spending and withdrawal until it is covered;
    the default policy: a frozen account gets no refund either. An operator freezes it here."""
    api.account("z")
    topup = api.top_up("z", "0.001")  # $60.00
    api.set_state("z", "frozen", "other", "under investigation")

    refund = api.refund_quote("z", topup["id"])
    withdrawal = api.withdrawal_quote("z", "50.00")

    assert api.refused(refund) == ["account_state"]
    assert api.rule(refund, "account_state")["clause"].startswith("docs/domain.md §4")
    assert api.refused(withdrawal) == ["account_state"]
    frozen = api.post(
        "/v1/accounts/z/usage",
        {"events": [{"event_id": "e1", "amount": api.usd("1.00"), "description": "call"}]},
    )
    api.problem(frozen, 409, "account_frozen")


def test_suspended_and_terminated_accounts_keep_their_unused_balance_after_review(
    api: PolicyApi,
) -> None:
    """docs/domain.md §6: what each account state allows for refunds and withdrawals comes from
    the policy. Kassa default: suspension and termination stop spending, not the return of unused
    money, but an operator reviews each payout (no time is promised)."""
    api.account("s")
    topup = api.top_up("s", "0.001")  # $60.00
    api.set_state("s", "suspended", "other", "chargeback enquiry")

    refund = api.ok(api.refund("s", topup["id"]), 201)

    assert (refund["status"], refund["needs_review"]) == ("pending_review", True)
    assert refund["review_due_at"] is None
    assert (
        "an operator reviews the request" in api.rule(refund["decision"], "account_state")["reason"]
    )
    spend = api.post("/v1/accounts/s/activations", {"price": api.usd("1.00")})
    api.problem(spend, 409, "account_suspended")

    api.account("t", funds="60.00")
    api.set_state("t", "terminated", "customer_request", "closed by the customer")
    withdrawal = api.withdrawal_quote("t", "60.00")
    assert withdrawal["allowed"] is True
    assert withdrawal["needs_review"] is True


def test_activations_expired_voided_by_the_worker_cancelled_at_once_fulfilled_final(
    api: PolicyApi, world: World
) -> None:
    """docs/domain.md §6: an activation is a hold with an expiry window (20 minutes by default).
    Expired → the price returns to the balance by the worker's sweep; cancelled before delivery →
    voided at once; fulfilled → captured, no longer refundable."""
    api.account("a", funds="10.00")
    expiring = api.activate("a", "1.00")
    cancelled = api.activate("a", "2.00")
    fulfilled = api.activate("a", "3.00")
    assert api.available("a") == "4.00"  # $10 − $1 − $2 − $3 reserved

    api.ok(api.activation("a", cancelled["id"], "cancel"))
    assert api.available("a") == "6.00"  # back at once
    api.ok(api.activation("a", fulfilled["id"], "fulfil"))
    world.clock.advance(timedelta(minutes=20))
    assert world.sweep() == 1  # only the unfulfilled, uncancelled one was still held

    assert api.available("a") == "7.00"  # $10 − $3 charged
    assert api.ok(api.activation("a", expiring["id"]))["status"] == "expired"
    api.problem(api.activation("a", fulfilled["id"], "cancel"), 409, "activation_fulfilled")


def test_decision_rate_reads_the_same_on_both_databases(api: PolicyApi, world: World) -> None:
    """docs/domain.md §9: amounts as decimal strings; §7: the decision is what support reads. The
    refund-date rate of $50 000 must read "50000" whatever the database.

    Fails on PostgreSQL today: the `Price` column type returns NUMERIC(40,12) values unnormalised
    (src/kassa/db/types.py, `Price.process_result_value`), so the decision record says
    "50000.000000000000" there and "50000" on SQLite; so does the deposit's status reason."""
    api.account("p")
    topup = api.top_up("p", "0.001")
    world.prices(btc="50000")

    assert topup["status_reason"] == "credited 60.00 USD at 60000 USD/BTC"
    assert api.money(api.refund_quote("p", topup["id"]))["rate"] == "50000"
    assert api.money(api.withdrawal_quote("p", "30.00"))["rate"] == "50000"
