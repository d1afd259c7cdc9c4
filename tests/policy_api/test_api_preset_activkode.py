"""Policy D (ACTIV KODE refund policy, sections 1-10), clause by clause, through the HTTP API:
activations with the worker's expiry sweep, and withdrawals of the balance. Every figure is
computed by hand in the comments (fees: conftest.FEES).

The clock starts on Friday 20 November 2026, 14:03:11 UTC.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from kassa.config import Settings

if TYPE_CHECKING:
    from tests.policy_api.conftest import PolicyApi, World

WINDOW = timedelta(minutes=20)


@pytest.fixture
def api(world: World) -> PolicyApi:
    return world.app("activkode")


def test_credited_top_ups_are_not_refunded_use_or_withdraw_the_balance(api: PolicyApi) -> None:
    """§1: "Refunds are processed back to your account balance, not directly to your crypto
    wallet." §5: "Top-ups that have already been credited and are sitting in your balance (use
    the balance instead)" — §6 offers a withdrawal instead; no operator can override it."""
    api.account("t")
    topup = api.top_up("t", "0.001")  # 0.001 BTC × $60 000 = $60.00

    refused = api.problem(api.refund("t", topup["id"]), 409, "refund_refused")

    decision = refused["decision"]
    assert api.refused(decision) == ["refunds_enabled"]
    assert "withdrawn" in api.rule(decision, "refunds_enabled")["reason"]
    assert api.rule(decision, "refunds_enabled")["clause"].startswith("§5")
    assert decision["overridable"] is False
    assert api.money(decision)["destination"] == "balance"
    assert api.money(decision)["net_native"] is None
    assert api.available("t") == "60.00"


def test_expired_activation_is_credited_back_automatically_by_the_worker(
    api: PolicyApi, world: World
) -> None:
    """§2: "If you rent a virtual SMS number or email address and no verification code arrives
    within the activation window (typically 20 minutes), the activation automatically expires
    and the full price is credited back to your balance within 1-2 minutes. You do not need to
    do anything — this is automatic."."""
    api.account("e")
    api.top_up("e", "0.001")  # $60.00
    rented = api.activate("e", "0.35", description="SMS number +44 7700 900123")
    assert rented["window_seconds"] == 1200
    assert api.available("e") == "59.65"  # $60 − $0.35 reserved

    world.clock.advance(WINDOW - timedelta(seconds=1))
    assert world.sweep() == 0  # one second before the window ends: still waiting for a code
    world.clock.advance(timedelta(seconds=1))
    # Nobody looks: the worker's sweep returns the price.
    assert world.sweep() == 1
    assert api.available("e") == "60.00"  # the full price, back without anyone asking
    after = api.ok(api.activation("e", rented["id"]))
    assert (after["status"], after["refunded"]) == ("expired", True)
    assert after["resolved_at"] == rented["expires_at"]
    # "within 1-2 minutes": the worker sweeps every 15 s unless configured otherwise.
    assert Settings.model_fields["hold_sweep_interval_seconds"].default <= 60

    # Somebody looks before any sweep: the activation reads expired with its price back.
    unseen = api.activate("e", "0.35")
    world.clock.advance(WINDOW)
    seen = api.ok(api.activation("e", unseen["id"]))
    assert (seen["status"], seen["refunded"]) == ("expired", True)
    assert api.available("e") == "60.00"

    # A code arriving after the window is not charged: the price is back at once.
    late = api.activate("e", "0.35")
    world.clock.advance(WINDOW)
    api.problem(api.activation("e", late["id"], "fulfil"), 409, "activation_expired")
    assert api.available("e") == "60.00"
    assert world.sweep() == 0  # nothing left for the worker


def test_manual_cancellation_before_the_code_arrives_is_refunded_immediately(
    api: PolicyApi,
) -> None:
    """§3: "You can manually cancel an activation from your dashboard at any time before the
    SMS/email arrives ... The price is refunded immediately to your balance"."""
    api.account("c", funds="10.00")
    rented = api.activate("c", "0.35")
    assert api.available("c") == "9.65"

    cancelled = api.ok(api.activation("c", rented["id"], "cancel"))

    assert (cancelled["status"], cancelled["refunded"]) == ("cancelled", True)
    assert api.available("c") == "10.00"  # no sweep needed
    api.problem(api.activation("c", rented["id"], "fulfil"), 409, "activation_cancelled")


def test_after_a_code_has_been_received_the_activation_is_not_refunded(
    api: PolicyApi, world: World
) -> None:
    """§3: "After a code has been received, the activation is considered fulfilled and cannot be
    refunded automatically." §5: "You changed your mind after a successful activation"."""
    api.account("f", funds="10.00")
    rented = api.activate("f", "0.35")

    fulfilled = api.ok(api.activation("f", rented["id"], "fulfil"))

    assert (fulfilled["status"], fulfilled["refunded"]) == ("fulfilled", False)
    refused = api.problem(api.activation("f", rented["id"], "cancel"), 409, "activation_fulfilled")
    assert "not refundable" in refused["detail"]
    world.clock.advance(WINDOW)
    assert world.sweep() == 0
    assert api.available("f") == "9.65"  # $10 − $0.35 charged for good


def test_minimum_20_dollars_flat_fee_5_dollars_processed_within_7_business_days(
    api: PolicyApi, world: World
) -> None:
    """§6: "Minimum withdrawal: $20 USD"; "Flat fee: $5 USD (covers our crypto network costs)";
    "We process within 7 business days"; §8: "Crypto withdrawal | Up to 7 business days"."""
    api.account("w", funds="150.00")
    world.prices(btc="50000")

    below = api.withdrawal_quote("w", "19.99")
    at = api.withdrawal_quote("w", "20.00")
    assert api.refused(below) == ["minimum_amount"]
    assert api.rule(below, "minimum_amount")["clause"] == "§6: Minimum withdrawal: $20 USD."
    assert at["allowed"] is True
    # $20 − $5 = $15 → 30 000 sat; the 2 000 sat fee ($1.00) is within the flat fee.
    assert api.money(at)["net_native"] == "0.0003 BTC"

    made = api.ok(api.withdraw("w", "100.00"), 201)

    money = api.money(made["decision"])
    assert money["flat_fee_usd"] == "5.00 USD"
    assert money["network_fee_usd"] == "1.00 USD"  # 2 000 sat × $50 000
    assert money["network_fee_charged_usd"] == "0.00 USD"  # covered by the flat fee
    # $100 − $5 = $95 → $95 / $50 000 = 190 000 sat.
    assert made["net_native"] == {"amount": "0.0019", "asset": "BTC"}
    assert made["net"] == {"amount": "95.00", "asset": "USD"}
    assert made["network_fee"] == {"amount": "0.00", "asset": "USD"}
    assert (made["status"], made["needs_review"]) == ("pending_review", True)
    # Friday 20 November: Mon 23, Tue 24, Wed 25, Thu 26, Fri 27, Mon 30 November, Tue 1 December.
    assert made["review_due_at"] == "2026-12-01T14:03:11Z"
    assert api.available("w") == "50.00"


def test_crypto_network_fees_beyond_the_flat_fee_are_the_customers(world: World) -> None:
    """§6: "You are responsible for any crypto network fees beyond the flat fee". Fee estimates
    of this deployment: 20 000 sat for BTC, 30 TRX for USDT-TRC20."""
    api = world.app("activkode", fees={"BTC": "0.0002", "USDT-TRC20": "30"})
    api.account("b", funds="150.00")
    world.prices(btc="50000")

    in_btc = api.money(api.withdrawal_quote("b", "100.00"))
    in_usdt = api.money(api.withdrawal_quote("b", "100.00", "USDT-TRC20"))

    # 20 000 sat × $50 000 = $10.00, $5.00 beyond the flat fee: $100 − $5 − $5 = $90 → 180 000 sat.
    assert in_btc["network_fee_usd"] == "10.00 USD"
    assert in_btc["network_fee_charged_usd"] == "5.00 USD"
    assert in_btc["net_usd"] == "90.00 USD"
    assert in_btc["net_native"] == "0.0018 BTC"
    # 30 TRX × $0.25 = $7.50, $2.50 beyond the flat fee: $100 − $5 − $2.50 = 92.50 USDT.
    assert in_usdt["network_fee_charged_usd"] == "2.50 USD"
    assert in_usdt["net_native"] == "92.50 USDT-TRC20"


def test_withdrawal_refused_when_the_fees_leave_nothing(world: World) -> None:
    """§6 "Withdrawal fees apply": a $20 withdrawal facing a 60 000 sat network fee would pay
    nothing."""
    api = world.app("activkode", fees={"BTC": "0.0006"})
    api.account("n", funds="150.00")
    world.prices(btc="50000")

    refused = api.problem(api.withdraw("n", "20.00"), 409, "withdrawal_refused")

    # 60 000 sat × $50 000 = $30, $25 beyond the flat fee: $20 − $5 − $25 = −$10.
    assert api.refused(refused["decision"]) == ["net_positive"]
    assert api.money(refused["decision"])["net_usd"] == "-10.00 USD"
    assert api.available("n") == "150.00"


def test_withdrawal_only_to_a_usdt_trc20_btc_or_eth_wallet(api: PolicyApi, world: World) -> None:
    """§6: "Specify the crypto wallet address (USDT TRC20, BTC, or ETH)"."""
    api.account("x", funds="300.00")
    world.prices(eth="2500")

    erc20 = api.withdrawal_quote("x", "100.00", "USDT-ERC20")
    trx = api.withdrawal_quote("x", "100.00", "TRX")
    eth = api.money(api.withdrawal_quote("x", "100.00", "ETH"))
    trc20 = api.ok(api.withdraw("x", "100.00", "USDT-TRC20"), 201)

    assert api.refused(erc20) == ["withdrawal_asset"]
    assert api.rule(erc20, "withdrawal_asset")["clause"].startswith("§6: Specify the crypto")
    assert api.refused(trx) == ["withdrawal_asset"]
    # 0.0004 ETH × $2 500 = $1.00, within the flat fee: $95 / $2 500 = 0.038 ETH.
    assert eth["net_native"] == "0.038 ETH"
    # 15 TRX × $0.25 = $3.75, within the flat fee: $100 − $5 = 95 USDT.
    assert trc20["net_native"] == {"amount": "95.00", "asset": "USDT-TRC20"}
    assert trc20["destination"] == api.PAYEE["tron"]


def test_no_withdrawal_after_a_suspension_or_termination_for_terms_violations(
    api: PolicyApi,
) -> None:
    """§5: "Cases Where We DO NOT Refund ... Account suspended or terminated due to Terms
    violations" — read to cover withdrawing the balance too (docs/policies.md); other
    suspensions may still withdraw (§6); a frozen balance never leaves (docs/domain.md §4)."""
    cases = [
        ("suspended", "violation", False),
        ("terminated", "violation", False),
        ("suspended", "customer_request", True),
        ("frozen", "other", False),
    ]
    for number, (state, reason, allowed) in enumerate(cases):
        external_id = f"v{number}"
        api.account(external_id, funds="100.00")
        api.set_state(external_id, state, reason)

        decision = api.withdrawal_quote(external_id, "50.00")

        assert decision["allowed"] is allowed, (state, reason)
        assert api.refused(decision) == ([] if allowed else ["account_state"])
    spend = api.post("/v1/accounts/v0/activations", {"price": api.usd("0.35")})
    api.problem(spend, 409, "account_suspended")
