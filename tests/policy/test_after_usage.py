"""The spent-funds reading (`refund.after_usage`, issue 14 item 3), decided by hand-built facts.

Policy A's seed (Codex Key) allows refunds "provided the balance has not been spent" and not when
"the balance has already been used to make API requests". Read strictly (``refuse``), any usage
charged at or after the top-up's payment refuses its refund; the lenient reading
(``refund_unspent_rest``, the product default) refunds what is left of it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kassa.money import BTC, USD, Money
from kassa.policy import (
    AccountFacts,
    AfterUsage,
    InvalidPolicy,
    NetworkFee,
    RateFacts,
    TopUpFacts,
    load_preset,
    quote_refund,
    with_overrides,
)

CODEXKEY = load_preset("codexkey")
DEFAULT = load_preset("default")
PAID_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NOW = PAID_AT + timedelta(days=1)
BTC_50K = RateFacts(BTC, Decimal("50000"))
FEE = NetworkFee(Money(2_000, BTC))


def usd(text: str) -> Money:
    return Money.parse(text, USD)


def topup() -> TopUpFacts:
    # 0.001 BTC at $60 000 = $60.00 credited.
    return TopUpFacts("topup-a", Money(100_000, BTC), usd("60.00"), PAID_AT, "bc1qcustomer")


def used(available: str, last_usage_at: datetime | None) -> AccountFacts:
    return AccountFacts(available_usd=usd(available), last_usage_at=last_usage_at)


def test_codexkey_reads_strictly_and_the_default_leniently() -> None:
    assert CODEXKEY.refund.after_usage is AfterUsage.REFUSE
    assert DEFAULT.refund.after_usage is AfterUsage.REFUND_UNSPENT_REST
    for name in ("codegateway", "ticketed-hosting", "activkode"):
        assert load_preset(name).refund.after_usage is AfterUsage.REFUND_UNSPENT_REST, name


def test_one_cent_of_usage_after_a_60_dollar_top_up_refuses_its_refund() -> None:
    """Not Available: "The balance has already been used to make API requests." $0.01 of usage
    an hour after the $60 top-up: nothing is refunded, not the $59.99 left either."""
    account = used("59.99", PAID_AT + timedelta(hours=1))

    decision = quote_refund(CODEXKEY, topup(), account, BTC_50K, FEE, NOW)

    assert not decision.allowed
    assert [r.rule_id for r in decision.refusals] == ["refundable_amount"]
    rule = decision.rule("refundable_amount")
    assert "already been used to make API requests" in rule.clause
    assert rule.reason == (
        "This top-up credited $60.00 at payment time, 2026-03-02 10:00 UTC, and usage was "
        "charged to the balance at or after that, last 2026-03-02 11:00 UTC; once the balance "
        "has been used, this policy refunds nothing of the top-up, not even the unused rest "
        "of $59.99."
    )
    assert decision.overridable is True  # the billing-error exception, by an operator only


def test_the_lenient_reading_refunds_the_unspent_rest_of_the_same_facts() -> None:
    account = used("59.99", PAID_AT + timedelta(hours=1))

    decision = quote_refund(DEFAULT, topup(), account, BTC_50K, FEE, NOW)

    assert decision.allowed
    # $59.99 / $50 000 = 119 980 sat; minus 2 000 sat = 117 980 sat.
    assert decision.breakdown.gross_usd == usd("59.99")
    assert decision.breakdown.net_native == Money(117_980, BTC)


def test_usage_at_the_payment_instant_counts_usage_before_it_does_not() -> None:
    """Two equal instants cannot be ordered; the strict reading resolves doubt against the
    refund. Usage a second before the payment spent an older balance."""
    at_payment = quote_refund(CODEXKEY, topup(), used("60.00", PAID_AT), BTC_50K, FEE, NOW)
    before = quote_refund(
        CODEXKEY, topup(), used("60.00", PAID_AT - timedelta(seconds=1)), BTC_50K, FEE, NOW
    )
    never = quote_refund(CODEXKEY, topup(), used("60.00", None), BTC_50K, FEE, NOW)

    assert [r.rule_id for r in at_payment.refusals] == ["refundable_amount"]
    assert before.allowed and never.allowed
    assert before.breakdown.gross_usd == usd("60.00")
    assert "was before this top-up was paid" in before.rule("refundable_amount").reason
    assert "no usage on record" in never.rule("refundable_amount").reason


def test_an_operator_may_refund_money_after_a_billing_error() -> None:
    """When Refunds Are Available 3): "A billing error on our side resulted in incorrect token
    deductions. In this case we refund tokens to the balance, or money on request." The faulty
    deduction is usage after the top-up; the operator's waiver refunds the top-up."""
    account = used("60.00", PAID_AT + timedelta(hours=1))

    decision = quote_refund(
        CODEXKEY,
        topup(),
        account,
        BTC_50K,
        FEE,
        NOW,
        requested_by="operator",
        operator_override=True,
    )

    assert decision.allowed
    assert decision.rule("refundable_amount").waived
    assert decision.breakdown.gross_usd == usd("60.00")


def test_refuse_contradicts_spent_funds_refundable() -> None:
    with pytest.raises(InvalidPolicy) as caught:
        with_overrides(
            DEFAULT, {"refund": {"after_usage": "refuse", "spent_funds_refundable": True}}
        )
    assert "contradicts spent_funds_refundable = true" in str(caught.value)
    with pytest.raises(InvalidPolicy) as unknown:
        with_overrides(DEFAULT, {"refund": {"after_usage": "refund_everything"}})
    assert "refund.after_usage" in str(unknown.value)
