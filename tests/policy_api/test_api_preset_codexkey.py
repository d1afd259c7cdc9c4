"""Policy A (Codex Key, "Refund Policy", last updated May 18, 2026), clause by clause, through the
HTTP API. Every figure is computed by hand in the comments (fees: conftest.FEES).

The clock starts on Friday 20 November 2026, 14:03:11 UTC; top-ups are paid at that instant.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.policy_api.conftest import PolicyApi, World


@pytest.fixture
def api(world: World) -> PolicyApi:
    world.prices(btc="60000")
    return world.app("codexkey")


def test_unused_balance_refundable_to_the_paying_wallet_reviewed_within_5_business_days(
    api: PolicyApi, world: World
) -> None:
    """General Terms: "Refunds of an unused balance are possible under the conditions described
    below." How to Request: "We review refund requests within 5 business days." Cryptocurrency
    Payments: "sent to the same wallet the payment originated from". The page offers refunds
    only: no withdrawal of the balance to another address."""
    api.account("a")
    topup = api.top_up("a", "0.001")  # 0.001 BTC × $60 000 = $60.00
    world.prices(btc="50000")

    refund = api.ok(api.refund("a", topup["id"]), 201)

    # $60 / $50 000 = 120 000 sat; minus 2 000 sat = 118 000 sat.
    assert refund["net_native"] == {"amount": "0.00118", "asset": "BTC"}
    assert refund["destination"] == api.SENDER["btc"]
    assert (refund["status"], refund["needs_review"]) == ("pending_review", True)
    # Friday 20 Nov + 5 business days: Mon 23, Tue 24, Wed 25, Thu 26, Fri 27 November.
    assert refund["review_due_at"] == "2026-11-27T14:03:11Z"
    assert api.available("a") == "0.00"  # reserved while it waits for the review
    api.credit("a", "60.00", "test funds")
    withdrawal = api.problem(api.withdraw("a", "50.00"), 409, "withdrawal_refused")
    assert api.refused(withdrawal["decision"]) == ["withdrawals_enabled", "withdrawal_asset"]

    # Business days skip weekends and the operator's holidays: asked on Saturday 21 November
    # with Thursday 26 November a holiday — Mon 23, Tue 24, Wed 25, Fri 27, Mon 30 November.
    holidays = world.app("codexkey", overrides={"calendar": {"holidays": ["2026-11-26"]}})
    holidays.account("h")
    later = holidays.top_up("h", "0.001")
    world.advance(timedelta(days=1))
    decision = holidays.refund_quote("h", later["id"])
    assert decision["review_due_at"] == "2026-11-30T14:03:11+00:00"


def test_refund_within_14_days_of_payment_not_once_more_than_14_days_have_passed(
    api: PolicyApi, world: World
) -> None:
    """When Refunds Are Available 1): "Payment was made by mistake (duplicate, wrong amount) —
    refund is available within 14 days of payment". When Refunds Are Not Available: "More than
    14 days have passed since the top-up." The 14th day itself is still within."""
    api.account("a")
    topup = api.top_up("a", "0.001")
    world.advance(timedelta(days=14))  # exactly 14 × 24 h after payment

    on_day_14 = api.refund_quote("a", topup["id"])
    world.advance(timedelta(minutes=1))
    refused = api.problem(api.refund("a", topup["id"]), 409, "refund_refused")

    assert on_day_14["allowed"] is True
    assert "until 2026-12-04 14:03 UTC" in api.rule(on_day_14, "refund_window")["reason"]
    decision = refused["decision"]
    assert api.refused(decision) == ["refund_window"]
    window = api.rule(decision, "refund_window")
    assert "the 14-day refund window closed 2026-12-04 14:03 UTC" in window["reason"]
    assert "More than 14 days have passed" in window["clause"]
    assert decision["overridable"] is False  # the policy lets no operator stretch it
    assert api.available("a") == "60.00"


def test_refund_not_available_once_the_balance_was_used_to_make_api_requests(
    api: PolicyApi, world: World
) -> None:
    """When Refunds Are Not Available: "The balance has already been used to make API
    requests." Available 1): "provided the balance has not been spent" — read strictly
    (`refund.after_usage = "refuse"`, issue 14): a used top-up is not refunded at all, not even
    its unused rest (tests/policy_api/test_api_codexkey_after_usage.py has the $0.01 case)."""
    api.account("all")
    spent = api.top_up("all", "0.001")  # $60.00
    api.use("all", "25.00", "35.00")  # every dollar of it
    api.account("part")
    partly = api.top_up("part", "0.001")  # $60.00
    api.use("part", "15.00")
    world.prices(btc="50000")

    none_left = api.refund_quote("all", spent["id"])
    rest = api.refund_quote("part", partly["id"])

    assert api.refused(none_left) == ["refundable_amount", "net_positive"]
    assert "Nothing is left to refund." in api.rule(none_left, "refundable_amount")["reason"]
    assert (
        "already been used to make API requests"
        in api.rule(none_left, "refundable_amount")["clause"]
    )
    assert api.refused(rest) == ["refundable_amount"]
    assert "not even the unused rest of $45.00" in api.rule(rest, "refundable_amount")["reason"]


def test_no_refund_when_the_account_was_suspended_for_a_violation_of_the_public_offer(
    api: PolicyApi,
) -> None:
    """When Refunds Are Not Available: "The account was suspended for a violation of the Public
    Offer." Reinstated, it is refundable again; other suspensions and terminations follow the
    ordinary conditions, and a termination for a violation is read as at least a suspension for
    one (docs/policies.md)."""
    api.account("v")
    topup = api.top_up("v", "0.001")
    api.set_state("v", "suspended", "violation", "resold access in breach of the offer")

    refused = api.problem(api.refund("v", topup["id"]), 409, "refund_refused")

    assert api.refused(refused["decision"]) == ["account_state"]
    state = api.rule(refused["decision"], "account_state")
    assert "Public Offer" in state["clause"]
    assert "suspended (violation)" in state["reason"]
    api.set_state("v", "active", "other", "appeal accepted")
    assert api.refund_quote("v", topup["id"])["allowed"] is True

    cases = [
        ("suspended", "other", True),
        ("terminated", "customer_request", True),
        ("terminated", "violation", False),
    ]
    for number, (state_, reason, allowed) in enumerate(cases):
        external_id = f"c{number}"
        api.account(external_id)
        other = api.top_up(external_id, "0.001")
        api.set_state(external_id, state_, reason)

        decision = api.refund_quote(external_id, other["id"])

        assert api.refused(decision) == ([] if allowed else ["account_state"]), (state_, reason)


def test_exchange_rate_losses_are_the_customers_converted_at_the_refund_date_rate(
    api: PolicyApi, world: World
) -> None:
    """When Refunds Are Not Available: "Exchange-rate losses for cross-currency refunds —
    converted by the official rate on the refund date"; Cryptocurrency Payments: "The refund
    amount is fixed in USD as of the original payment date; the crypto amount is recalculated
    at the rate on the refund date."."""
    api.account("x")
    topup = api.top_up("x", "0.001")  # $60.00 at $60 000
    world.advance(timedelta(days=5))
    world.prices(btc="80000")

    money = api.money(api.refund_quote("x", topup["id"]))

    # BTC rose to $80 000: $60 / $80 000 = 75 000 sat (not the 100 000 sat paid);
    # minus 2 000 sat = 73 000 sat. The fee is 2 000 sat × $80 000 = $1.60.
    assert money["gross_usd"] == "60.00 USD"
    assert money["net_native"] == "0.00073 BTC"
    assert money["net_usd"] == "58.40 USD"


def test_crypto_refunds_go_to_the_sending_wallet_with_network_fees_deducted(
    world: World,
) -> None:
    """Cryptocurrency Payments: "Refunds for cryptocurrency payments are sent to the same wallet
    the payment originated from ... Network fees are deducted from the refunded amount." — in
    ETH the fee is ETH; in USDT (ERC-20) it is ETH at its USD value. Fee estimates of this
    deployment: 0.0001 ETH for ETH, 0.0002 ETH for USDT-ERC20."""
    api = world.app("codexkey", fees={"ETH": "0.0001", "USDT-ERC20": "0.0002"})
    api.account("e")
    eth = api.top_up("e", "0.02", "ETH")  # 0.02 ETH × $3 000 = $60.00
    usdt = api.top_up("e", "50", "USDT-ERC20")  # 50 USDT × $1 = $50.00
    world.advance(timedelta(days=5))
    world.prices(eth="2400")

    in_eth = api.ok(api.refund("e", eth["id"]), 201)
    in_usdt = api.money(api.refund_quote("e", usdt["id"]))

    # $60 / $2 400 = 0.025 ETH; minus 0.0001 ETH = 0.0249 ETH, to the sender.
    assert in_eth["net_native"] == {"amount": "0.0249", "asset": "ETH"}
    assert in_eth["destination"].lower() == api.SENDER["eth"]
    # 0.0002 ETH × $2 400 = $0.48; $50 − $0.48 = 49.52 USDT.
    assert in_usdt["network_fee_usd"] == "0.48 USD"
    assert in_usdt["net_native"] == "49.52 USDT-ERC20"
    assert in_usdt["gross_usd"] == "50.00 USD"  # the $60 ETH refund is reserved elsewhere


def test_outage_or_billing_error_refunds_tokens_to_the_balance_or_money_on_request(
    api: PolicyApi, world: World
) -> None:
    """When Refunds Are Available 2) and 3): an outage or "A billing error on our side resulted
    in incorrect token deductions. In this case we refund tokens to the balance, or money on
    request." — the operator credits the wrongly deducted $60 back as tokens. The faulty
    deduction was usage after the top-up, so under the strict reading the customer's own refund
    stays refused; money on request is the operator's waiver of `refundable_amount`
    (tests/policy/test_after_usage.py decides it)."""
    api.account("b")
    topup = api.top_up("b", "0.001")  # $60.00
    api.use("b", "60.00")  # the faulty deduction
    world.prices(btc="50000")
    assert api.refund_quote("b", topup["id"])["allowed"] is False

    api.credit("b", "60.00", "billing error of 20 November: tokens refunded to the balance")
    assert api.available("b") == "60.00"

    refused = api.problem(api.refund("b", topup["id"]), 409, "refund_refused")
    assert api.refused(refused["decision"]) == ["refundable_amount"]
    assert refused["decision"]["overridable"] is True
    assert api.available("b") == "60.00"
