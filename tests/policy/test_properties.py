"""Properties of every decision: net never exceeds gross, and rounding never favours the customer.

Exact reference arithmetic uses `fractions.Fraction` (rational numbers, no floats): the value of
what a customer receives is compared with the exact value of what they are owed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from kassa.money import BTC, ETH, TRX, USD, USDT_ERC20, USDT_TRC20, Asset, Money
from kassa.policy import (
    AccountFacts,
    NetworkFee,
    Policy,
    RateFacts,
    TopUpFacts,
    load_preset,
    quote_refund,
    quote_withdrawal,
    with_overrides,
)

NOW = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
PAID_AT = NOW - timedelta(days=10)
PAYOUT_ASSETS = (BTC, ETH, USDT_ERC20, USDT_TRC20)
FEE_ASSET = {BTC: BTC, ETH: ETH, USDT_ERC20: ETH, USDT_TRC20: TRX}
MICRO = Fraction(1, 10**6)

DEFAULT = load_preset("default")
REFUND_POLICIES = {
    mode: with_overrides(DEFAULT, {"refund": {"network_fee": mode}}) for mode in ("deduct", "house")
}
WITHDRAWAL_POLICIES = {
    mode: with_overrides(DEFAULT, {"withdrawal": {"network_fee": mode}})
    for mode in ("deduct", "beyond_flat_fee", "house")
}

# Prices from $0.0001 to $10 000 000 per coin, with up to four decimals.
prices = st.integers(min_value=1, max_value=10**11).map(lambda n: Decimal(n).scaleb(-4))
micro_usd = st.integers(min_value=1, max_value=10**12)  # up to $1 000 000


def value_usd(amount: Money, price: Decimal) -> Fraction:
    """The exact USD value of a coin amount at ``price``."""
    return Fraction(amount.amount, 10**amount.asset.decimals) * Fraction(price)


def usd_exact(amount: Money) -> Fraction:
    return Fraction(amount.amount) * MICRO


@st.composite
def payout_setups(draw: st.DrawFn) -> tuple[Asset, RateFacts, NetworkFee]:
    asset = draw(st.sampled_from(PAYOUT_ASSETS))
    rate = RateFacts(asset, draw(prices))
    fee_asset = FEE_ASSET[asset]
    fee_amount = Money(
        draw(st.integers(min_value=0, max_value=10 ** (fee_asset.decimals + 1))), fee_asset
    )
    fee_rate = None if fee_asset == asset else RateFacts(fee_asset, draw(prices))
    return asset, rate, NetworkFee(fee_amount, fee_rate)


def fee_exact(fee: NetworkFee, rate: RateFacts) -> Fraction:
    fee_rate = fee.rate if fee.rate is not None else rate
    return value_usd(fee.amount, fee_rate.usd_per_unit)


@settings(max_examples=300, deadline=None)
@given(
    setup=payout_setups(),
    credited=micro_usd,
    available=st.integers(min_value=-(10**9), max_value=10**12),
    provider_fee=st.integers(min_value=0, max_value=10**7),
    mode=st.sampled_from(sorted(REFUND_POLICIES)),
)
def test_refund_rounding_never_favours_the_customer(
    setup: tuple[Asset, RateFacts, NetworkFee],
    credited: int,
    available: int,
    provider_fee: int,
    mode: str,
) -> None:
    asset, rate, fee = setup
    policy: Policy = REFUND_POLICIES[mode]
    topup = TopUpFacts("t", Money(1, asset), Money(credited, USD), PAID_AT, "sender")
    account = AccountFacts(available_usd=Money(available, USD))

    decision = quote_refund(
        policy, topup, account, rate, fee, NOW, provider_fee_usd=Money(provider_fee, USD)
    )

    b = decision.breakdown
    assert b.net_native is not None
    # Net never exceeds gross, and gross never exceeds what the top-up credited.
    assert b.net_usd <= b.gross_usd <= Money(credited, USD)
    assert b.net_usd == (
        b.gross_usd
        - b.handling_fee_usd
        - b.flat_fee_usd
        - b.provider_fee_usd
        - b.network_fee_charged_usd
    )
    # The fee charged in USD is rounded up: never below its exact value, less than 1 µUSD above.
    exact_fee = fee_exact(fee, rate)
    assert exact_fee <= usd_exact(b.network_fee_usd) < exact_fee + MICRO
    assert decision.allowed == (all(r.passed for r in decision.rules))
    if not b.net_native.is_positive:
        # Fees eat the refund: whatever the (negative) arithmetic says, nothing is paid.
        assert not decision.allowed
        return
    # What the customer receives is worth at most what they are owed, exactly computed…
    charged = exact_fee if mode == "deduct" else Fraction(0)
    owed = usd_exact(b.gross_usd) - usd_exact(b.provider_fee_usd) - charged
    received = value_usd(b.net_native, rate.usd_per_unit)
    assert received <= owed
    # …and rounding costs them less than one minor unit of the coin plus one micro-dollar.
    one_unit = value_usd(Money(1, asset), rate.usd_per_unit)
    assert received > owed - one_unit - MICRO


@settings(max_examples=300, deadline=None)
@given(
    setup=payout_setups(),
    amount=micro_usd,
    mode=st.sampled_from(sorted(WITHDRAWAL_POLICIES)),
)
def test_withdrawal_rounding_never_favours_the_customer(
    setup: tuple[Asset, RateFacts, NetworkFee], amount: int, mode: str
) -> None:
    asset, rate, fee = setup
    policy = WITHDRAWAL_POLICIES[mode]
    account = AccountFacts(available_usd=Money(10**12, USD))

    decision = quote_withdrawal(policy, account, Money(amount, USD), asset, rate, fee, NOW)

    b = decision.breakdown
    assert b.net_native is not None
    assert b.net_usd <= b.gross_usd == Money(amount, USD)
    flat = usd_exact(b.flat_fee_usd)
    exact_fee = fee_exact(fee, rate)
    exact_charged = {
        "deduct": exact_fee,
        "beyond_flat_fee": max(exact_fee - flat, Fraction(0)),
        "house": Fraction(0),
    }[mode]
    assert usd_exact(b.network_fee_charged_usd) >= exact_charged
    if not b.net_native.is_positive:
        assert not decision.allowed
        return
    owed = usd_exact(b.gross_usd) - flat - exact_charged
    received = value_usd(b.net_native, rate.usd_per_unit)
    assert received <= owed
    one_unit = value_usd(Money(1, asset), rate.usd_per_unit)
    assert received > owed - one_unit - MICRO
    assert decision.allowed == (b.gross_usd >= policy.withdrawal.minimum)


@settings(max_examples=50, deadline=None)
@given(setup=payout_setups(), credited=micro_usd, days=st.integers(min_value=0, max_value=60))
def test_decisions_are_pure(
    setup: tuple[Asset, RateFacts, NetworkFee], credited: int, days: int
) -> None:
    """Same policy, facts and clock → the same decision (nothing else is consulted)."""
    asset, rate, fee = setup
    policy = load_preset("codexkey")
    topup = TopUpFacts("t", Money(1, asset), Money(credited, USD), PAID_AT, "sender")
    account = AccountFacts(available_usd=Money(credited, USD))
    now = PAID_AT + timedelta(days=days)

    first = quote_refund(policy, topup, account, rate, fee, now)
    second = quote_refund(policy, topup, account, rate, fee, now)

    assert first == second
    assert first.rule("refund_window").passed is (days <= 14)
