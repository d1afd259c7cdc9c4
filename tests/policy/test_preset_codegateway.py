"""Policy B (CodeGateway, "Refund Policy", effective June 15, 2026), clause by clause.

Every amount is computed by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kassa.money import BTC, USD, Money
from kassa.policy import (
    AccountFacts,
    AccountState,
    NetworkFee,
    RateFacts,
    StateReason,
    TopUpFacts,
    load_preset,
    quote_refund,
    with_overrides,
)

POLICY = load_preset("codegateway")
PAID_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
NOW = PAID_AT + timedelta(days=3)  # Thursday 5 March 2026
BTC_50K = RateFacts(BTC, Decimal("50000"))
BTC_FEE = NetworkFee(Money(2_000, BTC))


def usd(text: str) -> Money:
    return Money.parse(text, USD)


def topup(*, refund_count: int = 0) -> TopUpFacts:
    # 0.001 BTC at $60 000 = $60.00 credited.
    return TopUpFacts(
        "topup-b", Money(100_000, BTC), usd("60.00"), PAID_AT, "bc1qgw", refund_count=refund_count
    )


def active(available: str = "60.00", last_usage_at: datetime | None = None) -> AccountFacts:
    return AccountFacts(available_usd=usd(available), last_usage_at=last_usage_at)


def terminated(reason: StateReason, at: datetime) -> AccountFacts:
    return AccountFacts(
        available_usd=usd("60.00"),
        state=AccountState.TERMINATED,
        state_reason=reason,
        state_changed_at=at,
    )


def test_any_unused_balance_at_any_time_with_no_time_limitation() -> None:
    """§1: "You may request a refund of any unused balance at any time, with no time
    limitation.\""""
    decision = quote_refund(
        POLICY, topup(), active(), BTC_50K, BTC_FEE, PAID_AT + timedelta(days=900)
    )

    assert decision.allowed
    assert decision.rule("refund_window").reason == "Refunds have no time limit."


def test_fees_for_services_already_consumed_are_non_refundable() -> None:
    """§1: "Token fees for services already consumed are non-refundable." $48 of the $60 was
    consumed; $12 is refundable."""
    decision = quote_refund(POLICY, topup(), active("12.00"), BTC_50K, BTC_FEE, NOW)

    assert decision.allowed
    # $12 / $50 000 = 24 000 sat; minus 2 000 sat = 22 000 sat.
    assert decision.breakdown.gross_usd == usd("12.00")
    assert decision.breakdown.net_native == Money(22_000, BTC)


@pytest.mark.parametrize(("available", "allowed"), [("1.99", False), ("2.00", True)])
def test_minimum_refundable_amount_is_usd_2(available: str, allowed: bool) -> None:
    """§2: "the minimum refundable amount per refund request is USD 2.00. If your refundable
    balance is below this threshold: You may keep the balance ... or wait until the balance
    accumulates to USD 2.00.\""""
    decision = quote_refund(
        POLICY, topup(), active(available), BTC_50K, NetworkFee(Money(200, BTC)), NOW
    )

    assert decision.allowed is allowed
    assert decision.rule("minimum_amount").passed is allowed
    if not allowed:
        assert "below the $2.00 minimum" in decision.rule("minimum_amount").reason


def test_self_service_refund_is_processed_instantly() -> None:
    """§3 Option 1: "Self-service via Dashboard (recommended, processed instantly)" — no review."""
    decision = quote_refund(POLICY, topup(), active(), BTC_50K, BTC_FEE, NOW)

    assert decision.allowed
    assert not decision.needs_review
    assert decision.review_due_at is None


def test_select_the_top_up_and_enter_the_refund_amount() -> None:
    """§3 Option 1: "Select the top-up payment, enter the refund amount and confirm.\""""
    decision = quote_refund(
        POLICY, topup(), active(), BTC_50K, BTC_FEE, NOW, amount_usd=usd("10.00")
    )
    too_much = quote_refund(
        POLICY, topup(), active(), BTC_50K, BTC_FEE, NOW, amount_usd=usd("60.01")
    )

    # $10 / $50 000 = 20 000 sat; minus 2 000 sat = 18 000 sat.
    assert decision.allowed
    assert decision.breakdown.net_native == Money(18_000, BTC)
    assert [r.rule_id for r in too_much.refusals] == ["refundable_amount"]
    assert "$60.01 was asked for" in too_much.refusals[0].reason


@pytest.mark.parametrize(
    ("quiet", "allowed"), [(timedelta(minutes=4, seconds=59), False), (timedelta(minutes=5), True)]
)
def test_no_api_calls_in_the_past_5_minutes(quiet: timedelta, allowed: bool) -> None:
    """§3 Option 1: "to avoid billing conflicts, you must have made no API calls in the past
    5 minutes\""""
    decision = quote_refund(
        POLICY, topup(), active(last_usage_at=NOW - quiet), BTC_50K, BTC_FEE, NOW
    )

    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule("usage_quiet_period").reason.endswith(
            "(possible from 2026-03-05 10:00 UTC)."
        )


def test_each_top_up_can_be_refunded_only_once() -> None:
    """§3 Option 1: "each top-up can be refunded only once\""""
    decision = quote_refund(POLICY, topup(refund_count=1), active(), BTC_50K, BTC_FEE, NOW)

    assert [r.rule_id for r in decision.refusals] == ["one_refund_per_topup"]


def test_fx_and_fees_are_borne_by_the_user() -> None:
    """§4: "Any difference due to bank / payment-provider FX conversion or fees is borne by the
    user." BTC fell to $40 000 and the provider charges $1.00."""
    decision = quote_refund(
        POLICY,
        topup(),
        active(),
        RateFacts(BTC, Decimal("40000")),
        BTC_FEE,
        NOW,
        provider_fee_usd=usd("1.00"),
    )

    # $60 − $1 = $59 → $59 / $40 000 = 147 500 sat; minus 2 000 sat = 145 500 sat.
    assert decision.breakdown.net_native == Money(145_500, BTC)
    # The 2 000 sat fee at $40 000 = $0.80; net USD = $59 − $0.80 = $58.20.
    assert decision.breakdown.net_usd == usd("58.20")


def test_serious_breach_termination_keeps_unused_balance_minus_handling_costs() -> None:
    """§5.1: "Unused balance remains refundable, but we reserve the right to deduct reasonable
    investigation / handling costs." The page names no amount: a deployment sets it ($10 here),
    and an operator reviews each such refund within the 5 business days of §3 Option 2."""
    states = [
        effect.model_dump(mode="python", exclude_none=True) for effect in POLICY.account_states
    ]
    states[0]["handling_cost"] = "10.00"
    policy = with_overrides(POLICY, {"account_states": states})
    decision = quote_refund(
        policy,
        topup(),
        terminated(StateReason.SERIOUS_BREACH, PAID_AT + timedelta(days=1)),
        BTC_50K,
        BTC_FEE,
        NOW,
    )

    assert decision.allowed
    # $60 − $10 = $50 → 100 000 sat; minus 2 000 sat = 98 000 sat.
    assert decision.breakdown.handling_fee_usd == usd("10.00")
    assert decision.breakdown.net_native == Money(98_000, BTC)
    assert decision.needs_review
    # Thursday 5 March + 5 business days = Thursday 12 March.
    assert decision.review_due_at == datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
    assert decision.rule("account_state").clause.startswith("§5.1")


def test_geographic_termination_refundable_within_six_months() -> None:
    """§5.2: "Within six (6) months of account termination ... you may request a refund of the
    unused balance"."""
    terminated_at = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    # 31 January + 6 months = 31 July 2026.
    inside = datetime(2026, 7, 31, 12, 0, tzinfo=UTC)
    decision = quote_refund(
        POLICY, topup(), terminated(StateReason.GEOGRAPHIC, terminated_at), BTC_50K, BTC_FEE, inside
    )

    assert decision.allowed
    assert decision.needs_review
    assert "until 2026-07-31 12:00 UTC" in decision.rule("account_state").reason


def test_geographic_termination_unclaimed_after_six_months_is_dormant() -> None:
    """§5.2: "Unused balance remaining unclaimed after six (6) months may be handled in accordance
    with UK 'dormant account' practices ... but you retain the right to seek recovery within the
    maximum period permitted by applicable law" — refused, but an operator may still refund."""
    terminated_at = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    late = datetime(2026, 7, 31, 12, 1, tzinfo=UTC)
    account = terminated(StateReason.GEOGRAPHIC, terminated_at)
    customer = quote_refund(POLICY, topup(), account, BTC_50K, BTC_FEE, late)
    operator = quote_refund(
        POLICY,
        topup(),
        account,
        BTC_50K,
        BTC_FEE,
        late,
        requested_by="operator",
        operator_override=True,
    )

    assert [r.rule_id for r in customer.refusals] == ["account_state"]
    assert customer.overridable
    assert operator.allowed
    assert [r.rule_id for r in operator.waivers] == ["account_state"]
    assert operator.rule("account_state").reason.endswith("Waived by an operator override.")


def test_other_terminations_keep_any_unused_balance_refundable() -> None:
    """§1: "You may request a refund of any unused balance at any time" — a termination at the
    customer's request changes nothing."""
    decision = quote_refund(
        POLICY, topup(), terminated(StateReason.CUSTOMER_REQUEST, PAID_AT), BTC_50K, BTC_FEE, NOW
    )

    assert decision.allowed
    assert not decision.needs_review
