"""The product's own policy (docs/domain.md §7 "Default" and its worked example), clause by
clause.

Every amount is computed by hand in the comments; nothing is derived from the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kassa.money import BTC, ETH, TRX, USD, USDT_TRC20, Money, convert_down
from kassa.policy import (
    AccountFacts,
    AccountState,
    ActivationFacts,
    ActivationOutcome,
    Destination,
    NetworkFee,
    RateFacts,
    StateReason,
    TopUpFacts,
    load_preset,
    quote_activation_refund,
    quote_refund,
    quote_withdrawal,
)

POLICY = load_preset("default")
PAID_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
TEN_DAYS_LATER = PAID_AT + timedelta(days=10)
SENDER = "bc1qsenderaddressofthetopup"


def usd(text: str) -> Money:
    return Money.parse(text, USD)


def btc_topup(*, sender: str | None = SENDER, ambiguous: bool = False) -> TopUpFacts:
    # 0.00100000 BTC at $60 000 credits $60.00 (the worked example).
    return TopUpFacts(
        id="topup-1",
        amount=Money(100_000, BTC),
        credited_usd=usd("60.00"),
        paid_at=PAID_AT,
        sender_address=sender,
        sender_ambiguous=ambiguous,
    )


def active(available: str = "60.00") -> AccountFacts:
    return AccountFacts(available_usd=usd(available))


def btc_at(price: str) -> RateFacts:
    return RateFacts(BTC, Decimal(price), source="static", lock_id="lock-1")


def test_worked_example_top_up_credits_60_dollars() -> None:
    """docs/domain.md §7, worked example: a top-up of 0.00100000 BTC at $60 000 credits $60.00."""
    # Credits round down (kassa.money); 100 000 sat × 60 000 $/BTC = $60 exactly.
    assert convert_down(Money(100_000, BTC), 60_000, 1, USD) == usd("60.00")


def test_worked_example_refund_ten_days_later_pays_0_00118000_btc() -> None:
    """docs/domain.md §7, worked example: refunded ten days later at BTC = $50 000 with a network
    fee of 2 000 sat, that top-up pays 60.00 / 50 000 = 0.00120000 BTC − 0.00002000 =
    0.00118000 BTC to the sending address."""
    decision = quote_refund(
        POLICY,
        btc_topup(),
        active(),
        btc_at("50000"),
        NetworkFee(Money(2_000, BTC)),
        TEN_DAYS_LATER,
    )

    assert decision.allowed
    b = decision.breakdown
    assert b.gross_usd == usd("60.00")
    assert b.rate == Decimal("50000")
    assert b.network_fee_native == Money(2_000, BTC)
    assert b.network_fee_usd == usd("1.00")  # 2 000 sat × $50 000 / 10^8
    assert b.network_fee_charged_usd == usd("1.00")
    assert b.net_usd == usd("59.00")
    assert b.net_native == Money(118_000, BTC)  # 120 000 sat − 2 000 sat
    assert b.net_native.format() == "0.00118"
    assert b.destination is Destination.ORIGINAL_WALLET
    assert b.rate_lock_id == "lock-1"
    assert decision.rule("origin_address").reason.endswith(f"{SENDER}.")
    assert not decision.needs_review
    assert decision.review_due_at is None


def test_refund_goes_back_to_the_originating_wallet_only() -> None:
    """docs/domain.md §7 Default: refunds are paid to the originating wallet — a BTC payment whose
    inputs came from several addresses has no single wallet to go back to."""
    decision = quote_refund(
        POLICY,
        btc_topup(sender=None, ambiguous=True),
        active(),
        btc_at("50000"),
        NetworkFee(Money(2_000, BTC)),
        TEN_DAYS_LATER,
    )

    assert not decision.allowed
    assert [r.rule_id for r in decision.refusals] == ["origin_address"]
    assert "several addresses" in decision.refusals[0].reason
    assert not decision.overridable  # no operator can invent the sender


def test_refund_valued_in_usd_at_payment_time_converted_at_refund_date_rate() -> None:
    """docs/domain.md §7 Default: the USD credited at payment time, converted at the refund-date
    rate — BTC rose to $75 000, so the same $60.00 buys fewer coins."""
    decision = quote_refund(
        POLICY,
        btc_topup(),
        active(),
        btc_at("75000"),
        NetworkFee(Money(2_000, BTC)),
        TEN_DAYS_LATER,
    )

    # $60 / $75 000 = 0.00080000 BTC = 80 000 sat; minus 2 000 sat = 78 000 sat.
    assert decision.breakdown.net_native == Money(78_000, BTC)
    # The fee at $75 000: 2 000 sat = $1.50.
    assert decision.breakdown.net_usd == usd("58.50")


def test_refund_network_fee_deducted_at_a_rate_that_does_not_divide_evenly() -> None:
    """docs/domain.md §7 Default: network fee deducted; §2: rounding favours the house."""
    decision = quote_refund(
        POLICY,
        btc_topup(),
        active(),
        btc_at("70000"),
        NetworkFee(Money(1_500, BTC)),
        TEN_DAYS_LATER,
    )

    # $60 / $70 000 = 0.000857142857… BTC → 85 714 sat (rounded down); minus 1 500 = 84 214 sat.
    assert decision.breakdown.net_native == Money(84_214, BTC)
    # 1 500 sat × $70 000 = $1.05 exactly. The net in USD is what the 84 214 sat are worth,
    # $58.9498 (issue 14 item 4: it showed $58.95); the fee charged is the rest, $1.0502 —
    # the $1.05 fee plus the $0.0002 the rounded-down coins could not carry.
    assert decision.breakdown.network_fee_usd == usd("1.05")
    assert decision.breakdown.net_usd == usd("58.9498")
    assert decision.breakdown.network_fee_charged_usd == usd("1.0502")


def test_only_the_unspent_part_of_a_top_up_is_refunded() -> None:
    """Kassa default (docs/domain.md §7, a Kassa choice): spent funds are not refundable; what is
    unspent is min(this top-up's credited USD, the available balance)."""
    decision = quote_refund(
        POLICY,
        btc_topup(),
        active("25.00"),
        btc_at("50000"),
        NetworkFee(Money(2_000, BTC)),
        TEN_DAYS_LATER,
    )

    assert decision.allowed
    # $25 / $50 000 = 50 000 sat; minus 2 000 = 48 000 sat.
    assert decision.breakdown.gross_usd == usd("25.00")
    assert decision.breakdown.net_native == Money(48_000, BTC)


def test_refund_refused_when_the_network_fee_eats_it() -> None:
    """Kassa: a refund must be worth more than its fees (the payout would be nothing)."""
    decision = quote_refund(
        POLICY,
        btc_topup(),
        active("0.50"),
        btc_at("50000"),
        NetworkFee(Money(2_000, BTC)),
        TEN_DAYS_LATER,
    )

    # $0.50 / $50 000 = 1 000 sat; minus 2 000 sat = −1 000 sat.
    assert not decision.allowed
    assert decision.breakdown.net_native == Money(-1_000, BTC)
    assert [r.rule_id for r in decision.refusals] == ["net_positive"]
    assert "Nothing would be paid out" in decision.refusals[0].reason


def test_every_rule_is_listed_even_after_a_refusal() -> None:
    """docs/domain.md §7: every decision lists the rules it applied and why."""
    decision = quote_refund(
        POLICY,
        btc_topup(sender=None),
        active("0.00"),
        btc_at("50000"),
        NetworkFee(Money(2_000, BTC)),
        TEN_DAYS_LATER,
    )

    assert [r.rule_id for r in decision.rules] == [
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
    assert {r.rule_id for r in decision.refusals} == {
        "refundable_amount",
        "origin_address",
        "net_positive",
    }
    assert all(r.reason and r.clause for r in decision.rules)
    assert decision.summary().startswith("Refused: ")
    assert "Nothing is left to refund." in decision.summary()


def test_withdrawal_needs_a_20_dollar_minimum() -> None:
    """docs/domain.md §7 Default: a withdrawal is at least $20."""
    fee = NetworkFee(Money(2_000, BTC))
    below = quote_withdrawal(
        POLICY, active("100.00"), usd("19.99"), BTC, btc_at("50000"), fee, TEN_DAYS_LATER
    )
    at = quote_withdrawal(
        POLICY, active("100.00"), usd("20.00"), BTC, btc_at("50000"), fee, TEN_DAYS_LATER
    )

    assert [r.rule_id for r in below.refusals] == ["minimum_amount"]
    assert "below the $20.00 minimum" in below.refusals[0].reason
    assert at.allowed
    # $20 − $5 = $15 → 30 000 sat; minus 2 000 sat = 28 000 sat.
    assert at.breakdown.net_native == Money(28_000, BTC)


def test_withdrawal_charges_a_5_dollar_flat_fee_and_subtracts_the_network_fee() -> None:
    """docs/domain.md §7 Default: withdrawals charge a $5 flat fee and deduct the network fee."""
    decision = quote_withdrawal(
        POLICY,
        active("150.00"),
        usd("100.00"),
        BTC,
        btc_at("50000"),
        NetworkFee(Money(2_000, BTC)),
        TEN_DAYS_LATER,
    )

    assert decision.allowed
    b = decision.breakdown
    assert b.gross_usd == usd("100.00")
    assert b.flat_fee_usd == usd("5.00")
    assert b.network_fee_charged_usd == usd("1.00")
    # $100 − $5 = $95 → 190 000 sat; minus the 2 000 sat fee = 188 000 sat ($94.00).
    assert b.net_native == Money(188_000, BTC)
    assert b.net_usd == usd("94.00")
    assert b.destination is Destination.WITHDRAWAL_ADDRESS


def test_withdrawal_in_eth_subtracts_the_fee_in_wei() -> None:
    """docs/domain.md §7 Default, paid in ETH: the network fee is ETH too."""
    decision = quote_withdrawal(
        POLICY,
        active("150.00"),
        usd("100.00"),
        ETH,
        RateFacts(ETH, Decimal("2500")),
        NetworkFee(Money(400_000_000_000_000, ETH)),  # 0.0004 ETH = $1.00
        TEN_DAYS_LATER,
    )

    # $95 / $2 500 = 0.038 ETH; minus 0.0004 ETH = 0.0376 ETH.
    assert decision.breakdown.net_native == Money.parse("0.0376", ETH)


def test_withdrawal_in_usdt_trc20_subtracts_the_trx_fee_at_its_usd_value() -> None:
    """docs/domain.md §7 Default, paid in USDT on TRON: the network fee is burnt TRX, in USD."""
    decision = quote_withdrawal(
        POLICY,
        active("150.00"),
        usd("100.00"),
        USDT_TRC20,
        RateFacts(USDT_TRC20, Decimal("1.00")),
        NetworkFee(Money.parse("15", TRX), RateFacts(TRX, Decimal("0.25"))),
        TEN_DAYS_LATER,
    )

    # 15 TRX × $0.25 = $3.75; $100 − $5 − $3.75 = $91.25 → 91.25 USDT.
    assert decision.breakdown.network_fee_usd == usd("3.75")
    assert decision.breakdown.net_native == Money.parse("91.25", USDT_TRC20)


def test_withdrawal_cannot_exceed_the_available_balance() -> None:
    """docs/domain.md §3: a customer's available balance never goes below zero."""
    decision = quote_withdrawal(
        POLICY,
        active("30.00"),
        usd("30.01"),
        BTC,
        btc_at("50000"),
        NetworkFee(Money(2_000, BTC)),
        TEN_DAYS_LATER,
    )

    assert [r.rule_id for r in decision.refusals] == ["sufficient_balance"]


def test_withdrawal_only_in_the_assets_kassa_accepts() -> None:
    """docs/domain.md §1: customers pay with BTC, ETH, USDT-ERC20 or USDT-TRC20; TRX is not one."""
    decision = quote_withdrawal(
        POLICY,
        active("150.00"),
        usd("100.00"),
        TRX,
        RateFacts(TRX, Decimal("0.25")),
        NetworkFee(Money.parse("1", TRX)),
        TEN_DAYS_LATER,
    )

    assert [r.rule_id for r in decision.refusals] == ["withdrawal_asset"]


def test_frozen_account_gets_no_refund_and_no_withdrawal() -> None:
    """docs/domain.md §4: a negative balance freezes spending and withdrawal until covered."""
    frozen = AccountFacts(
        available_usd=usd("100.00"),
        state=AccountState.FROZEN,
        state_reason=StateReason.NEGATIVE_BALANCE,
        state_changed_at=PAID_AT,
    )
    fee = NetworkFee(Money(2_000, BTC))
    refund = quote_refund(POLICY, btc_topup(), frozen, btc_at("50000"), fee, TEN_DAYS_LATER)
    withdrawal = quote_withdrawal(
        POLICY, frozen, usd("50.00"), BTC, btc_at("50000"), fee, TEN_DAYS_LATER
    )

    assert [r.rule_id for r in refund.refusals] == ["account_state"]
    assert [r.rule_id for r in withdrawal.refusals] == ["account_state"]
    assert refund.refusals[0].clause.startswith("docs/domain.md §4")


def test_suspended_account_keeps_its_unused_balance_after_review() -> None:
    """docs/domain.md §6: each state's effect comes from the policy. Kassa default: a suspended
    account may take its unused money back, after an operator's review."""
    suspended = AccountFacts(
        available_usd=usd("60.00"),
        state=AccountState.SUSPENDED,
        state_reason=StateReason.OTHER,
        state_changed_at=PAID_AT,
    )
    decision = quote_refund(
        POLICY,
        btc_topup(),
        suspended,
        btc_at("50000"),
        NetworkFee(Money(2_000, BTC)),
        TEN_DAYS_LATER,
    )

    assert decision.allowed
    assert decision.needs_review
    assert decision.review_due_at is None  # the default policy promises no review time


@pytest.mark.parametrize(
    ("outcome", "refunded"),
    [
        (ActivationOutcome.EXPIRED, True),
        (ActivationOutcome.CANCELLED, True),
        (ActivationOutcome.FULFILLED, False),
        (ActivationOutcome.PENDING, False),
    ],
)
def test_activation_refunds_follow_the_hold(outcome: ActivationOutcome, refunded: bool) -> None:
    """docs/domain.md §6: expired → the price returns to the balance; cancelled before delivery →
    voided at once; fulfilled → captured, no longer refundable."""
    activation = ActivationFacts("act-1", usd("0.35"), PAID_AT, outcome)
    decision = quote_activation_refund(POLICY, activation, PAID_AT + timedelta(minutes=21))

    assert decision.allowed is refunded
    assert decision.breakdown.destination is Destination.BALANCE
    assert decision.breakdown.net_usd == usd("0.35")
    assert not decision.overridable


def test_decision_record_is_plain_json_data() -> None:
    """docs/domain.md §7: every decision lists the rules it applied and why."""
    decision = quote_refund(
        POLICY,
        btc_topup(),
        active(),
        btc_at("50000"),
        NetworkFee(Money(2_000, BTC)),
        TEN_DAYS_LATER,
    )
    record = decision.as_record()

    breakdown = record["breakdown"]
    assert isinstance(breakdown, dict)
    assert breakdown["net_native"] == {"amount": "0.00118", "asset": "BTC"}
    assert breakdown["rate"] == "50000"
    assert record["allowed"] is True
    rules = record["rules"]
    assert isinstance(rules, list)
    assert len(rules) == 11
