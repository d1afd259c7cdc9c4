"""Policy D (ACTIV KODE refund policy, sections 1-10), clause by clause.

Every amount is computed by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kassa.money import BTC, ETH, TRX, USD, USDT_ERC20, USDT_TRC20, Asset, Money
from kassa.policy import (
    AccountFacts,
    AccountState,
    ActivationFacts,
    ActivationOutcome,
    ClaimKind,
    Destination,
    NetworkFee,
    RateFacts,
    StateReason,
    TopUpFacts,
    check_claim_window,
    load_preset,
    quote_activation_refund,
    quote_refund,
    quote_withdrawal,
    with_overrides,
)

POLICY = load_preset("activkode")
ACTIVATED_AT = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)  # a Friday
FRIDAY = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
BTC_50K = RateFacts(BTC, Decimal("50000"))
USDT_1 = RateFacts(USDT_TRC20, Decimal("1"))
TRX_QUARTER = RateFacts(TRX, Decimal("0.25"))


def usd(text: str) -> Money:
    return Money.parse(text, USD)


def activation(outcome: ActivationOutcome) -> ActivationFacts:
    return ActivationFacts("act-d", usd("0.35"), ACTIVATED_AT, outcome)


def account(available: str = "150.00") -> AccountFacts:
    return AccountFacts(available_usd=usd(available))


def withdraw(
    amount: str,
    asset: Asset = BTC,
    rate: RateFacts = BTC_50K,
    fee: NetworkFee | None = None,
    who: AccountFacts | None = None,
) -> bool:
    fee = fee or NetworkFee(Money(2_000, BTC))
    return quote_withdrawal(POLICY, who or account(), usd(amount), asset, rate, fee, FRIDAY).allowed


def test_refunds_go_to_the_balance_not_the_crypto_wallet() -> None:
    """§1: "Refunds are processed back to your account balance, not directly to your crypto
    wallet.\""""
    decision = quote_activation_refund(
        POLICY, activation(ActivationOutcome.EXPIRED), ACTIVATED_AT + timedelta(minutes=21)
    )

    b = decision.breakdown
    assert b.destination is Destination.BALANCE
    assert b.net_native is None
    assert b.network_fee_native is None
    assert b.net_usd == usd("0.35")


def test_expired_activation_is_credited_back_automatically() -> None:
    """§2: "no verification code arrives within the activation window (typically 20 minutes),
    the activation automatically expires and the full price is credited back to your balance
    ... You do not need to do anything — this is automatic.\""""
    decision = quote_activation_refund(
        POLICY, activation(ActivationOutcome.EXPIRED), ACTIVATED_AT + timedelta(minutes=21)
    )

    assert decision.allowed
    assert decision.breakdown.gross_usd == usd("0.35")  # the full price
    assert not decision.needs_review


def test_cancelled_before_the_code_arrives_is_refunded_immediately() -> None:
    """§3: "You can manually cancel an activation from your dashboard at any time before the
    SMS/email arrives ... The price is refunded immediately to your balance.\""""
    decision = quote_activation_refund(
        POLICY, activation(ActivationOutcome.CANCELLED), ACTIVATED_AT + timedelta(minutes=3)
    )

    assert decision.allowed
    assert not decision.needs_review


def test_a_running_activation_is_not_refunded_even_by_an_operator() -> None:
    """§3: cancelling is how a running activation is refunded; no override skips that."""
    decision = quote_activation_refund(
        POLICY,
        activation(ActivationOutcome.PENDING),
        ACTIVATED_AT + timedelta(minutes=3),
        requested_by="operator",
        operator_override=True,
    )

    assert not decision.allowed
    assert not decision.rule("activation_outcome").waived


def test_fulfilled_activation_cannot_be_refunded_automatically() -> None:
    """§3: "After a code has been received, the activation is considered fulfilled and cannot be
    refunded automatically." §5: "You received a valid code but the third-party service rejected
    it", "You received a code but didn't use it in time", "You changed your mind after a
    successful activation" — none is refunded."""
    decision = quote_activation_refund(
        POLICY, activation(ActivationOutcome.FULFILLED), ACTIVATED_AT + timedelta(hours=2)
    )

    assert [r.rule_id for r in decision.refusals] == ["activation_outcome"]
    assert "fulfilled" in decision.refusals[0].reason
    # Only a manual review (technical error on our side, §4) could change it.
    assert decision.overridable


def test_technical_error_on_our_side_is_refunded_after_manual_review() -> None:
    """§4: "Technical error on our side prevented service delivery (manual review)"; §8: "Manual
    review (support ticket) | 1-3 business days". Reviewed on Friday: due Wednesday."""
    decision = quote_activation_refund(
        POLICY,
        activation(ActivationOutcome.FULFILLED),
        FRIDAY,
        requested_by="operator",
        operator_override=True,
    )

    assert decision.allowed
    assert [r.rule_id for r in decision.waivers] == ["activation_outcome"]
    assert decision.needs_review
    # Friday + 3 business days = Mon, Tue, Wed → Wednesday 11 March 2026, 10:00.
    assert decision.review_due_at == datetime(2026, 3, 11, 10, 0, tzinfo=UTC)


def test_activation_disputes_within_30_days_of_the_activation_date() -> None:
    """§7: "Disputes about specific activations should be raised within 30 days of the activation
    date." — even an operator cannot refund a fulfilled activation disputed on day 31."""
    on_day_30 = quote_activation_refund(
        POLICY,
        activation(ActivationOutcome.FULFILLED),
        ACTIVATED_AT + timedelta(days=30),
        requested_by="operator",
        operator_override=True,
    )
    on_day_31 = quote_activation_refund(
        POLICY,
        activation(ActivationOutcome.FULFILLED),
        ACTIVATED_AT + timedelta(days=31),
        requested_by="operator",
        operator_override=True,
    )

    assert on_day_30.allowed
    assert [r.rule_id for r in on_day_31.refusals] == ["dispute_window"]
    assert on_day_31.refusals[0].clause.startswith("§7")


@pytest.mark.parametrize(("days", "passed"), [(7, True), (8, False)])
def test_top_up_errors_are_claimed_within_7_days(days: int, passed: bool) -> None:
    """§7: "If you believe a top-up was made in error, contact us within 7 days." §4: "Duplicate
    top-up due to system error (manual review)", "Top-up credited the wrong account due to our
    error (manual review)" — operators correct the balance, within the claim window."""
    outcome = check_claim_window(
        POLICY, ClaimKind.TOPUP_ERROR, ACTIVATED_AT, ACTIVATED_AT + timedelta(days=days)
    )

    assert outcome.passed is passed
    assert POLICY.refund.fault_credits_to_balance


def test_credited_top_ups_are_not_refunded() -> None:
    """§5: "Top-ups that have already been credited and are sitting in your balance (use the
    balance instead)" — and not even an operator refunds one."""
    topup = TopUpFacts("topup-d", Money(100_000, BTC), usd("60.00"), ACTIVATED_AT, "bc1qd")
    decision = quote_refund(
        POLICY,
        topup,
        account(),
        None,  # a refund to the balance needs no rate and no network fee
        None,
        FRIDAY,
        requested_by="operator",
        operator_override=True,
    )

    assert [r.rule_id for r in decision.refusals] == ["refunds_enabled"]
    assert "withdrawn" in decision.refusals[0].reason
    assert not decision.overridable


@pytest.mark.parametrize("state", [AccountState.SUSPENDED, AccountState.TERMINATED])
def test_no_refund_or_withdrawal_after_terms_violations(state: AccountState) -> None:
    """§5: "Account suspended or terminated due to Terms violations" — read to cover withdrawing
    the balance as well (see docs/policies.md)."""
    violator = AccountFacts(
        available_usd=usd("150.00"),
        state=state,
        state_reason=StateReason.VIOLATION,
        state_changed_at=ACTIVATED_AT,
    )

    assert not withdraw("100.00", who=violator)


def test_other_suspensions_may_still_withdraw() -> None:
    """§5 excludes only Terms violations; §6 lets the remaining balance be withdrawn."""
    suspended = AccountFacts(
        available_usd=usd("150.00"),
        state=AccountState.SUSPENDED,
        state_reason=StateReason.OTHER,
        state_changed_at=ACTIVATED_AT,
    )

    assert withdraw("100.00", who=suspended)


@pytest.mark.parametrize(
    ("asset", "rate", "fee", "allowed"),
    [
        (USDT_TRC20, USDT_1, NetworkFee(Money.parse("10", TRX), TRX_QUARTER), True),
        (BTC, BTC_50K, NetworkFee(Money(2_000, BTC)), True),
        (
            ETH,
            RateFacts(ETH, Decimal("2500")),
            NetworkFee(Money.parse("0.0004", ETH)),
            True,
        ),
        (
            USDT_ERC20,
            RateFacts(USDT_ERC20, Decimal("1")),
            NetworkFee(Money.parse("0.0004", ETH), RateFacts(ETH, Decimal("2500"))),
            False,
        ),
    ],
)
def test_withdrawal_in_usdt_trc20_btc_or_eth(
    asset: Asset, rate: RateFacts, fee: NetworkFee, allowed: bool
) -> None:
    """§6: "Specify the crypto wallet address (USDT TRC20, BTC, or ETH)\""""
    assert withdraw("100.00", asset, rate, fee) is allowed


@pytest.mark.parametrize(("amount", "allowed"), [("19.99", False), ("20.00", True)])
def test_minimum_withdrawal_is_20_dollars(amount: str, allowed: bool) -> None:
    """§6: "Minimum withdrawal: $20 USD\""""
    assert withdraw(amount) is allowed


def test_flat_fee_covers_a_network_fee_below_it() -> None:
    """§6: "Flat fee: $5 USD (covers our crypto network costs)" — a $1.00 BTC fee is covered."""
    decision = quote_withdrawal(
        POLICY, account(), usd("100.00"), BTC, BTC_50K, NetworkFee(Money(2_000, BTC)), FRIDAY
    )

    b = decision.breakdown
    assert b.flat_fee_usd == usd("5.00")
    assert b.network_fee_usd == usd("1.00")
    assert b.network_fee_charged_usd == usd("0.00")
    # $100 − $5 = $95 → $95 / $50 000 = 190 000 sat.
    assert b.net_native == Money(190_000, BTC)


def test_network_fees_beyond_the_flat_fee_are_the_customers() -> None:
    """§6: "You are responsible for any crypto network fees beyond the flat fee" — a 20 000 sat
    fee at $50 000 is $10.00, $5.00 beyond the flat fee."""
    decision = quote_withdrawal(
        POLICY, account(), usd("100.00"), BTC, BTC_50K, NetworkFee(Money(20_000, BTC)), FRIDAY
    )

    b = decision.breakdown
    assert b.network_fee_usd == usd("10.00")
    assert b.network_fee_charged_usd == usd("5.00")
    # $100 − $5 flat − $5 beyond = $90 → $90 / $50 000 = 180 000 sat.
    assert b.net_usd == usd("90.00")
    assert b.net_native == Money(180_000, BTC)


def test_trx_network_fee_beyond_the_flat_fee_on_a_usdt_trc20_withdrawal() -> None:
    """§6: "You are responsible for any crypto network fees beyond the flat fee" — USDT on TRON
    burns 30 TRX at $0.25 = $7.50, $2.50 beyond the flat fee."""
    decision = quote_withdrawal(
        POLICY,
        account(),
        usd("100.00"),
        USDT_TRC20,
        USDT_1,
        NetworkFee(Money.parse("30", TRX), TRX_QUARTER),
        FRIDAY,
    )

    # $100 − $5 − $2.50 = $92.50 → 92.5 USDT.
    assert decision.breakdown.net_native == Money.parse("92.5", USDT_TRC20)


def test_withdrawals_processed_within_7_business_days() -> None:
    """§6: "We process within 7 business days"; §8: "Crypto withdrawal | Up to 7 business days".
    Requested Friday 6 March 2026: Mon 9 … Fri 13 (5), Mon 16 (6), Tue 17 (7)."""
    decision = quote_withdrawal(
        POLICY, account(), usd("100.00"), BTC, BTC_50K, NetworkFee(Money(2_000, BTC)), FRIDAY
    )

    assert decision.needs_review
    assert decision.review_due_at == datetime(2026, 3, 17, 10, 0, tzinfo=UTC)


def test_withdrawal_deadline_skips_the_operators_holidays() -> None:
    """§6: "within 7 business days" — a holiday on Monday 9 March is not a business day."""
    policy = with_overrides(POLICY, {"calendar": {"holidays": ["2026-03-09"]}})
    decision = quote_withdrawal(
        policy, account(), usd("100.00"), BTC, BTC_50K, NetworkFee(Money(2_000, BTC)), FRIDAY
    )

    assert decision.review_due_at == datetime(2026, 3, 18, 10, 0, tzinfo=UTC)


def test_withdrawal_refused_when_the_fees_leave_nothing() -> None:
    """§6 "Withdrawal fees apply": a $20 withdrawal paying a $30 network fee would send nothing."""
    decision = quote_withdrawal(
        POLICY, account(), usd("20.00"), BTC, BTC_50K, NetworkFee(Money(60_000, BTC)), FRIDAY
    )

    # Fee 60 000 sat = $30; beyond the flat fee $25; $20 − $5 − $25 = −$10.
    assert decision.breakdown.net_usd == Money(-10_000_000, USD)
    assert [r.rule_id for r in decision.refusals] == ["net_positive"]
