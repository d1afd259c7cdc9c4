"""Policy C (hosting help centre, "How to request a refund"), clause by clause.

Every amount is computed by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kassa.money import BTC, TRX, USD, USDT_TRC20, Money
from kassa.policy import (
    AccountFacts,
    AccountState,
    NetworkFee,
    RateFacts,
    StateReason,
    TopUpFacts,
    load_preset,
    quote_refund,
    quote_withdrawal,
)

POLICY = load_preset("ticketed-hosting")
PAID_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NOW = PAID_AT + timedelta(days=3)
BTC_50K = RateFacts(BTC, Decimal("50000"))
BTC_FEE = NetworkFee(Money(2_000, BTC))


def usd(text: str) -> Money:
    return Money.parse(text, USD)


def topup(credited: str = "60.00") -> TopUpFacts:
    # 0.001 BTC at $60 000 = $60.00 credited.
    return TopUpFacts("topup-c", Money(100_000, BTC), usd(credited), PAID_AT, "bc1qhost")


def account(
    available: str = "60.00", *, pending_refunds: int = 0, open_dispute: bool = False
) -> AccountFacts:
    return AccountFacts(
        available_usd=usd(available),
        pending_refund_count=pending_refunds,
        open_dispute=open_dispute,
    )


def test_refund_requests_are_tickets_approved_only_when_all_conditions_are_met() -> None:
    """How to request: "A refund request can be submitted as a ticket, and will be approved if and
    only if all conditions (see below) are properly met." — every request is reviewed; the
    article promises no time, so there is no due date."""
    decision = quote_refund(POLICY, topup(), account(), BTC_50K, BTC_FEE, NOW)

    assert decision.allowed
    assert decision.needs_review
    assert decision.review_due_at is None
    # $60 / $50 000 = 120 000 sat; minus 2 000 sat = 118 000 sat.
    assert decision.breakdown.net_native == Money(118_000, BTC)


@pytest.mark.parametrize(
    ("age", "allowed"),
    [(timedelta(days=14), True), (timedelta(days=14, seconds=1), False)],
)
def test_payment_must_not_be_older_than_14_days(age: timedelta, allowed: bool) -> None:
    """ "The payment you'd want a refund from must not be older than 14 days. (The minimum time
    required by law for purchases made online)\""""
    decision = quote_refund(POLICY, topup(), account(), BTC_50K, BTC_FEE, PAID_AT + age)

    assert decision.allowed is allowed
    assert decision.rule("refund_window").clause.startswith("The payment you'd want")


def test_funds_must_not_already_have_been_spent() -> None:
    """ "The funds must not already have been spent." — all $60 was spent."""
    decision = quote_refund(POLICY, topup(), account("0.00"), BTC_50K, BTC_FEE, NOW)

    assert not decision.allowed
    assert decision.rule("refundable_amount").passed is False
    # The exception below is for operators, so support sees the refusal can be overridden.
    assert decision.overridable


def test_spent_funds_refunded_when_unable_to_use_the_service_through_our_fault() -> None:
    """ "(Exceptions can be made if you where unable to use the service due to our, or any
    involved providers fault)" — an operator refunds the spent $60 top-up."""
    decision = quote_refund(
        POLICY,
        topup(),
        account("0.00"),
        BTC_50K,
        BTC_FEE,
        NOW,
        requested_by="operator",
        operator_override=True,
    )

    assert decision.allowed
    assert [r.rule_id for r in decision.waivers] == ["refundable_amount"]
    assert decision.breakdown.gross_usd == usd("60.00")
    assert decision.breakdown.net_native == Money(118_000, BTC)


def test_the_fault_exception_never_refunds_more_than_the_top_up() -> None:
    """The fault exception refunds spent funds of *this* payment, never more than it credited."""
    decision = quote_refund(
        POLICY,
        topup(),
        account("0.00"),
        BTC_50K,
        BTC_FEE,
        NOW,
        requested_by="operator",
        operator_override=True,
        amount_usd=usd("60.01"),
    )

    assert [r.rule_id for r in decision.refusals] == ["refundable_amount"]


def test_customers_cannot_override() -> None:
    """Exceptions "can be made" — by the operator, not by the customer's own request."""
    with pytest.raises(ValueError, match="only an operator"):
        quote_refund(POLICY, topup(), account(), BTC_50K, BTC_FEE, NOW, operator_override=True)


def test_amounts_below_1_dollar_are_not_refunded() -> None:
    """ "Any amount less than $1 will not be refunded\""""
    decision = quote_refund(
        POLICY, topup(), account("0.99"), BTC_50K, NetworkFee(Money(100, BTC)), NOW
    )

    assert [r.rule_id for r in decision.refusals] == ["minimum_amount"]
    assert "below the $1.00 minimum" in decision.refusals[0].reason


def test_below_1_dollar_refunded_when_the_processor_refunds_the_fees() -> None:
    """ "... unless the payment processor agrees to refund the transaction fees" — the operator
    checks that and overrides."""
    decision = quote_refund(
        POLICY,
        topup(),
        account("0.99"),
        BTC_50K,
        NetworkFee(Money(100, BTC)),
        NOW,
        requested_by="operator",
        operator_override=True,
    )

    assert decision.allowed
    # $0.99 / $50 000 = 1 980 sat; minus 100 sat = 1 880 sat.
    assert decision.breakdown.net_native == Money(1_880, BTC)


def test_no_refund_while_another_refund_request_is_pending() -> None:
    """ "There must be no pending refund requests ... in progress\""""
    decision = quote_refund(POLICY, topup(), account(pending_refunds=1), BTC_50K, BTC_FEE, NOW)

    assert [r.rule_id for r in decision.refusals] == ["no_pending_refund"]
    assert "1 other refund of this account is still pending" in decision.refusals[0].reason
    assert not decision.overridable


def test_no_refund_while_a_chargeback_is_active() -> None:
    """ "There must be no ... active charge backs with the payment processor in progress\""""
    decision = quote_refund(POLICY, topup(), account(open_dispute=True), BTC_50K, BTC_FEE, NOW)

    assert [r.rule_id for r in decision.refusals] == ["no_open_dispute"]


def test_account_state_is_not_a_condition() -> None:
    """ "approved if and only if all conditions (see below) are properly met" — a suspended
    account meeting every listed condition is refunded."""
    suspended = AccountFacts(
        available_usd=usd("60.00"),
        state=AccountState.SUSPENDED,
        state_reason=StateReason.VIOLATION,
        state_changed_at=PAID_AT,
    )

    assert quote_refund(POLICY, topup(), suspended, BTC_50K, BTC_FEE, NOW).allowed


def test_below_zero_after_a_chargeback_nothing_is_refunded() -> None:
    """What happens in the event of a chargeback: "A chargeback will reset your account balance
    ... if the amount goes below $0 ..." — the account is frozen (docs/domain.md §4)."""
    frozen = AccountFacts(
        available_usd=Money.parse("-5.00", USD, allow_negative=True),
        state=AccountState.FROZEN,
        state_reason=StateReason.NEGATIVE_BALANCE,
        state_changed_at=PAID_AT,
    )
    decision = quote_refund(POLICY, topup(), frozen, BTC_50K, BTC_FEE, NOW)

    assert {r.rule_id for r in decision.refusals} == {
        "account_state",
        "refundable_amount",
        "minimum_amount",
        "net_positive",
    }


def test_withdrawals_are_described_elsewhere() -> None:
    """ "Note that there is a difference between a refund and a withdrawal ... More info on the
    withdrawal page" — that page is not part of this policy, so no withdrawal is decided here."""
    decision = quote_withdrawal(
        POLICY,
        account(),
        usd("30.00"),
        USDT_TRC20,
        RateFacts(USDT_TRC20, Decimal("1")),
        NetworkFee(Money.parse("1", TRX), RateFacts(TRX, Decimal("0.25"))),
        NOW,
    )

    assert [r.rule_id for r in decision.refusals] == ["withdrawals_enabled", "withdrawal_asset"]
