"""Policy A (Codex Key, "Refund Policy", last updated May 18, 2026), clause by clause.

Every amount is computed by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kassa.money import BTC, ETH, USD, USDT_ERC20, Money
from kassa.policy import (
    AccountFacts,
    AccountState,
    ClaimKind,
    Destination,
    NetworkFee,
    RateFacts,
    StateReason,
    TopUpFacts,
    check_claim_window,
    load_preset,
    quote_refund,
    quote_withdrawal,
)

POLICY = load_preset("codexkey")
PAID_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
SENDER = "bc1qcodexkeycustomer"
BTC_FEE = NetworkFee(Money(2_000, BTC))


def usd(text: str) -> Money:
    return Money.parse(text, USD)


def btc_topup() -> TopUpFacts:
    # 0.001 BTC at $60 000 = $60.00 credited.
    return TopUpFacts("topup-a", Money(100_000, BTC), usd("60.00"), PAID_AT, SENDER)


def active(available: str = "60.00") -> AccountFacts:
    return AccountFacts(available_usd=usd(available))


def in_state(state: AccountState, reason: StateReason) -> AccountFacts:
    return AccountFacts(
        available_usd=usd("60.00"), state=state, state_reason=reason, state_changed_at=PAID_AT
    )


BTC_50K = RateFacts(BTC, Decimal("50000"))


def refund_at(now: datetime, account: AccountFacts | None = None) -> bool:
    return quote_refund(POLICY, btc_topup(), account or active(), BTC_50K, BTC_FEE, now).allowed


def test_general_terms_an_unused_balance_is_refundable() -> None:
    """General Terms: "Refunds of an unused balance are possible under the conditions described
    below.\""""
    decision = quote_refund(
        POLICY, btc_topup(), active(), BTC_50K, BTC_FEE, PAID_AT + timedelta(days=3)
    )

    assert decision.allowed
    # $60 / $50 000 = 120 000 sat; minus 2 000 sat = 118 000 sat.
    assert decision.breakdown.net_native == Money(118_000, BTC)


def test_mistaken_payment_refundable_within_14_days_of_payment() -> None:
    """When Refunds Are Available 1): "Payment was made by mistake (duplicate, wrong amount) —
    refund is available within 14 days of payment"; the 14th day itself is still within."""
    assert refund_at(PAID_AT + timedelta(days=14))


def test_refund_refused_after_14_days() -> None:
    """When Refunds Are Not Available: "More than 14 days have passed since the top-up.\""""
    decision = quote_refund(
        POLICY, btc_topup(), active(), BTC_50K, BTC_FEE, PAID_AT + timedelta(days=14, minutes=1)
    )

    assert [r.rule_id for r in decision.refusals] == ["refund_window"]
    reason = decision.refusals[0]
    assert "14-day refund window closed 2026-03-16 10:00 UTC" in reason.reason
    assert "More than 14 days" in reason.clause
    # The policy lets no operator stretch the window.
    assert not decision.overridable


def test_refund_refused_when_the_balance_was_used() -> None:
    """When Refunds Are Not Available: "The balance has already been used to make API requests.\""""
    decision = quote_refund(
        POLICY, btc_topup(), active("0.00"), BTC_50K, BTC_FEE, PAID_AT + timedelta(days=1)
    )

    assert not decision.allowed
    assert "refundable_amount" in {r.rule_id for r in decision.refusals}
    assert "Nothing is left to refund." in decision.rule("refundable_amount").reason


def test_refund_limited_to_the_unspent_balance() -> None:
    """When Refunds Are Available 1): "provided the balance has not been spent"; General Terms:
    refunds "of an unused balance" — $15 was used, $45 of the $60 top-up is still unused."""
    decision = quote_refund(
        POLICY, btc_topup(), active("45.00"), BTC_50K, BTC_FEE, PAID_AT + timedelta(days=1)
    )

    assert decision.allowed
    # $45 / $50 000 = 90 000 sat; minus 2 000 sat = 88 000 sat.
    assert decision.breakdown.gross_usd == usd("45.00")
    assert decision.breakdown.net_native == Money(88_000, BTC)


def test_no_refund_when_suspended_for_a_violation() -> None:
    """When Refunds Are Not Available: "The account was suspended for a violation of the Public
    Offer.\""""
    decision = quote_refund(
        POLICY,
        btc_topup(),
        in_state(AccountState.SUSPENDED, StateReason.VIOLATION),
        BTC_50K,
        BTC_FEE,
        PAID_AT + timedelta(days=1),
    )

    assert [r.rule_id for r in decision.refusals] == ["account_state"]
    assert "Public Offer" in decision.refusals[0].clause


@pytest.mark.parametrize(
    ("state", "reason", "allowed"),
    [
        (AccountState.SUSPENDED, StateReason.OTHER, True),
        (AccountState.TERMINATED, StateReason.CUSTOMER_REQUEST, True),
        # Read as covered by "suspended for a violation" (see docs/policies.md).
        (AccountState.TERMINATED, StateReason.VIOLATION, False),
    ],
)
def test_only_a_violation_excludes_a_refund(
    state: AccountState, reason: StateReason, allowed: bool
) -> None:
    """When Refunds Are Not Available lists only a suspension "for a violation of the Public
    Offer"; other suspensions and terminations follow the ordinary conditions."""
    assert refund_at(PAID_AT + timedelta(days=1), in_state(state, reason)) is allowed


def test_outage_or_billing_error_refunds_tokens_to_the_balance_or_money_on_request() -> None:
    """When Refunds Are Available 2) and 3): a significant outage or a billing error on our side —
    "we refund tokens to the balance, or money on request". The tokens come back as an operator's
    balance credit; money then follows the ordinary refund (the balance is unspent again)."""
    assert POLICY.refund.fault_credits_to_balance
    # Before the credit, the outage ate the balance; after it, the $60 is unused again.
    before = quote_refund(
        POLICY, btc_topup(), active("0.00"), BTC_50K, BTC_FEE, PAID_AT + timedelta(days=2)
    )
    after = quote_refund(
        POLICY, btc_topup(), active("60.00"), BTC_50K, BTC_FEE, PAID_AT + timedelta(days=2)
    )

    assert not before.allowed
    assert after.allowed


def test_exchange_rate_losses_are_the_customers() -> None:
    """When Refunds Are Not Available: "Exchange-rate losses for cross-currency refunds —
    converted by the official rate on the refund date"; Cryptocurrency Payments: "The refund
    amount is fixed in USD as of the original payment date; the crypto amount is recalculated
    at the rate on the refund date.\""""
    decision = quote_refund(
        POLICY,
        btc_topup(),
        active(),
        RateFacts(BTC, Decimal("80000")),
        BTC_FEE,
        PAID_AT + timedelta(days=5),
    )

    # BTC rose from $60 000 to $80 000: $60 / $80 000 = 75 000 sat (not the 100 000 sat paid);
    # minus 2 000 sat = 73 000 sat.
    assert decision.breakdown.gross_usd == usd("60.00")
    assert decision.breakdown.net_native == Money(73_000, BTC)


def test_crypto_refund_goes_to_the_originating_wallet_with_network_fee_deducted() -> None:
    """Cryptocurrency Payments: "Refunds for cryptocurrency payments are sent to the same wallet
    the payment originated from ... Network fees are deducted from the refunded amount.\""""
    # 0.02 ETH at $3 000 = $60.00 credited.
    topup = TopUpFacts("topup-eth", Money.parse("0.02", ETH), usd("60.00"), PAID_AT, "0xabc")
    decision = quote_refund(
        POLICY,
        topup,
        active(),
        RateFacts(ETH, Decimal("2400")),
        NetworkFee(Money.parse("0.0001", ETH)),
        PAID_AT + timedelta(days=5),
    )

    # $60 / $2 400 = 0.025 ETH; minus 0.0001 ETH = 0.0249 ETH to 0xabc.
    assert decision.breakdown.net_native == Money.parse("0.0249", ETH)
    assert decision.breakdown.destination is Destination.ORIGINAL_WALLET
    assert "0xabc" in decision.rule("origin_address").reason


def test_usdt_refund_pays_the_eth_network_fee_out_of_the_refund() -> None:
    """Cryptocurrency Payments: "Network fees are deducted from the refunded amount" — a USDT
    (ERC-20) refund pays its fee in ETH, deducted at its USD value."""
    topup = TopUpFacts("topup-usdt", Money.parse("50", USDT_ERC20), usd("50.00"), PAID_AT, "0xdef")
    decision = quote_refund(
        POLICY,
        topup,
        active("50.00"),
        RateFacts(USDT_ERC20, Decimal("1.00")),
        NetworkFee(Money.parse("0.0002", ETH), RateFacts(ETH, Decimal("2500"))),
        PAID_AT + timedelta(days=5),
    )

    # 0.0002 ETH × $2 500 = $0.50; $50 − $0.50 = 49.50 USDT.
    assert decision.breakdown.network_fee_usd == usd("0.50")
    assert decision.breakdown.net_native == Money.parse("49.5", USDT_ERC20)


def test_payment_provider_refund_fees_are_deducted() -> None:
    """Refund Method: "Any refund fees charged by the payment provider are deducted from the
    refunded amount.\""""
    decision = quote_refund(
        POLICY,
        btc_topup(),
        active(),
        BTC_50K,
        BTC_FEE,
        PAID_AT + timedelta(days=5),
        provider_fee_usd=usd("0.50"),
    )

    # $60 − $0.50 = $59.50 → 119 000 sat; minus 2 000 sat = 117 000 sat.
    assert decision.breakdown.provider_fee_usd == usd("0.50")
    assert decision.breakdown.net_native == Money(117_000, BTC)
    assert decision.breakdown.net_usd == usd("58.50")


def test_requests_are_reviewed_within_5_business_days() -> None:
    """How to Request a Refund: "We review refund requests within 5 business days." A request on
    Thursday 5 March 2026 is due Thursday 12 March (Fri, Mon, Tue, Wed, Thu)."""
    thursday = datetime(2026, 3, 5, 16, 30, tzinfo=UTC)
    decision = quote_refund(POLICY, btc_topup(), active(), BTC_50K, BTC_FEE, thursday)

    assert decision.allowed
    assert decision.needs_review
    assert decision.review_due_at == datetime(2026, 3, 12, 16, 30, tzinfo=UTC)


def test_mistaken_payment_claims_within_14_days() -> None:
    """When Refunds Are Available 1): "Payment was made by mistake (duplicate, wrong amount) —
    refund is available within 14 days of payment.\""""
    on_time = check_claim_window(
        POLICY, ClaimKind.TOPUP_ERROR, PAID_AT, PAID_AT + timedelta(days=14)
    )
    late = check_claim_window(POLICY, ClaimKind.TOPUP_ERROR, PAID_AT, PAID_AT + timedelta(days=15))

    assert on_time.passed
    assert not late.passed
    assert "14-day window" in late.reason


def test_no_withdrawals_under_this_policy() -> None:
    """Codex Key's refund policy offers refunds only, no withdrawal of the balance to an address."""
    decision = quote_withdrawal(
        POLICY, active(), usd("50.00"), BTC, BTC_50K, BTC_FEE, PAID_AT + timedelta(days=1)
    )

    assert not decision.allowed
    assert decision.rule("withdrawals_enabled").passed is False
