"""Every displayed USD figure of a payout reconciles to the smallest unit (issue 14 item 4).

The rule (docs/payouts.md, "Figures and rounding"; `kassa.policy._support`): the coins sent are
rounded down; the displayed net USD is exactly what those coins are worth at the stated rate,
rounded down to the micro-dollar; the network fee charged is the rest, so gross = fees +
network fee charged + net. Checked over random amounts, fees, rates, assets and fee modes with
exact rational arithmetic (no floats).
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
    Breakdown,
    NetworkFee,
    RateFacts,
    TopUpFacts,
    load_preset,
    quote_refund,
    quote_withdrawal,
    with_overrides,
)

NOW = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
PAID_AT = NOW - timedelta(days=10)
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
# Prices from $0.0001 to $10 000 000 per coin, with up to four decimals; up to $1 000 000.
prices = st.integers(min_value=1, max_value=10**11).map(lambda n: Decimal(n).scaleb(-4))
micro_usd = st.integers(min_value=1, max_value=10**12)


def value_usd(amount: Money, price: Decimal) -> Fraction:
    return Fraction(amount.amount, 10**amount.asset.decimals) * Fraction(price)


def usd_exact(amount: Money) -> Fraction:
    return Fraction(amount.amount) * MICRO


def fee_exact(fee: NetworkFee, rate: RateFacts) -> Fraction:
    fee_rate = fee.rate if fee.rate is not None else rate
    return value_usd(fee.amount, fee_rate.usd_per_unit)


@st.composite
def payout_setups(draw: st.DrawFn) -> tuple[Asset, RateFacts, NetworkFee]:
    asset = draw(st.sampled_from(tuple(FEE_ASSET)))
    rate = RateFacts(asset, draw(prices))
    fee_asset = FEE_ASSET[asset]
    fee_amount = Money(
        draw(st.integers(min_value=0, max_value=10 ** (fee_asset.decimals + 1))), fee_asset
    )
    fee_rate = None if fee_asset == asset else RateFacts(fee_asset, draw(prices))
    return asset, rate, NetworkFee(fee_amount, fee_rate)


def assert_reconciles(b: Breakdown, rate: RateFacts, fee: NetworkFee) -> None:
    assert b.net_native is not None
    assert b.gross_usd == (
        b.handling_fee_usd
        + b.flat_fee_usd
        + b.provider_fee_usd
        + b.network_fee_charged_usd
        + b.net_usd
    )
    if not b.net_native.is_positive:
        return  # a refusal: nothing is sent, so nothing to reconcile with
    worth = value_usd(b.net_native, rate.usd_per_unit)
    # The displayed net is the coins' worth, rounded down to the micro-dollar: exactly.
    assert usd_exact(b.net_usd) <= worth < usd_exact(b.net_usd) + MICRO
    # The fee charged covers at least the part of the fee the mode charges (the house's
    # favour), and the fee's own figure is its worth rounded up.
    exact_fee = fee_exact(fee, rate)
    assert exact_fee <= usd_exact(b.network_fee_usd) < exact_fee + MICRO


@settings(max_examples=300, deadline=None)
@given(
    setup=payout_setups(),
    amount=micro_usd,
    mode=st.sampled_from(sorted(WITHDRAWAL_POLICIES)),
)
def test_withdrawal_figures_reconcile_to_the_smallest_unit(
    setup: tuple[Asset, RateFacts, NetworkFee], amount: int, mode: str
) -> None:
    asset, rate, fee = setup
    account = AccountFacts(available_usd=Money(10**12, USD))
    decision = quote_withdrawal(
        WITHDRAWAL_POLICIES[mode], account, Money(amount, USD), asset, rate, fee, NOW
    )
    assert_reconciles(decision.breakdown, rate, fee)


@settings(max_examples=300, deadline=None)
@given(
    setup=payout_setups(),
    credited=micro_usd,
    provider_fee=st.integers(min_value=0, max_value=10**7),
    mode=st.sampled_from(sorted(REFUND_POLICIES)),
)
def test_refund_figures_reconcile_to_the_smallest_unit(
    setup: tuple[Asset, RateFacts, NetworkFee], credited: int, provider_fee: int, mode: str
) -> None:
    asset, rate, fee = setup
    policy = REFUND_POLICIES[mode]
    topup = TopUpFacts("t", Money(1, asset), Money(credited, USD), PAID_AT, "sender")
    account = AccountFacts(available_usd=Money(credited, USD))
    decision = quote_refund(policy, topup, account, rate, fee, NOW)
    assert_reconciles(decision.breakdown, rate, fee)


def test_the_twenty_dollar_withdrawal_of_the_issue() -> None:
    """$20.00 under the default policy ($5 flat fee), ETH at $3 000, a fee of
    0.000266666666666666 ETH ($0.799999999999998, shown $0.80). The coins sent,
    0.004733333333333334 ETH, are worth $14.200000000000002: the net shows $14.200000 by the
    written rule, and the fee charged is the rest."""
    rate = RateFacts(ETH, Decimal(3000))
    fee = NetworkFee(Money(266_666_666_666_666, ETH))
    account = AccountFacts(available_usd=Money(10**9, USD))
    b = quote_withdrawal(
        WITHDRAWAL_POLICIES["deduct"], account, Money(20_000_000, USD), ETH, rate, fee, NOW
    ).breakdown
    assert b.net_native == Money(4_733_333_333_333_334, ETH)
    assert value_usd(b.net_native, rate.usd_per_unit) == Fraction(14_200_000_000_000_002, 10**15)
    assert b.net_usd == Money(14_200_000, USD)
    assert b.network_fee_charged_usd == Money(800_000, USD)
    assert_reconciles(b, rate, fee)
