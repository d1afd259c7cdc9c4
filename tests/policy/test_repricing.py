"""Re-pricing at approval, the arithmetic (`kassa.policy.reprice`; docs/payouts.md "Re-pricing at
approval"): the USD a request is worth stays, the coins, fee and net follow the new rate by the
same rule as a decision, the one rule that depends on them (``net_positive``) is asked again, and
the stored decision record comes back whole (`decision_of`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kassa.money import BTC, ETH, TRX, USD, USDT_ERC20, USDT_TRC20, Asset, Money
from kassa.policy import (
    AccountFacts,
    Decision,
    NetworkFee,
    Pricing,
    RateFacts,
    TopUpFacts,
    decision_of,
    load_preset,
    quote_refund,
    quote_withdrawal,
    reprice,
    reprices,
    with_overrides,
)

NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
LATER = NOW + timedelta(days=3)
CODEXKEY = load_preset("codexkey")
DEFAULT = load_preset("default")
FEE_ASSET = {BTC: BTC, ETH: ETH, USDT_ERC20: ETH, USDT_TRC20: TRX}
MICRO = Fraction(1, 10**6)
BTC_FEE = NetworkFee(Money(2_000, BTC))  # 2 000 sat


def _codexkey_refund(credited: str, rate: str, fee: NetworkFee = BTC_FEE) -> Decision:
    topup = TopUpFacts(
        "t-1", Money.parse("0.001", BTC), Money.parse(credited, USD), NOW, "bcrt1qsender"
    )
    account = AccountFacts(available_usd=Money.parse(credited, USD))
    decision = quote_refund(CODEXKEY, topup, account, RateFacts(BTC, Decimal(rate)), fee, NOW)
    assert decision.allowed
    return decision


def test_the_worked_example_of_the_docs() -> None:
    """docs/payouts.md "Re-pricing at approval": a $60.00 codexkey refund committed at $60 000
    with a 2 000 sat fee, 100 000 − 2 000 = 98 000 sat worth $58.80, is approved three days
    later at $43 210.99 with a 2 850 sat fee: $60 buys 138 853.56… sat, 138 853 down, less
    2 850 = 136 003 sat, worth $58.768242 (58.76824272…, down); the fee is $1.231514
    (1.2315132…, up) and the fee charged the rest, $1.231758. The gross and every other rule's
    verdict stay; net_positive says it was re-priced."""
    committed = _codexkey_refund("60.00", "60000")
    assert committed.breakdown.net_native == Money(98_000, BTC)
    assert committed.breakdown.net_usd == Money.parse("58.80", USD)

    fee = NetworkFee(Money(2_850, BTC))
    rate = RateFacts(BTC, Decimal("43210.99"), lock_id="L2")
    result = reprice(CODEXKEY, committed, rate, fee, LATER)

    new = result.new
    assert result.allowed and result.changed
    assert new.gross_usd == Money.parse("60.00", USD) == result.old.gross_usd
    assert new.net_native == Money(136_003, BTC)
    assert new.net_usd == Money.parse("58.768242", USD)
    assert new.network_fee_usd == Money.parse("1.231514", USD)
    assert new.network_fee_charged_usd == Money.parse("1.231758", USD)
    assert new.network_fee_charged_usd + new.net_usd == new.gross_usd
    assert (new.rate, new.rate_lock_id, new.network_fee_native) == (
        Decimal("43210.99"),
        "L2",
        Money(2_850, BTC),
    )
    kept = [r for r in committed.rules if r.rule_id != "net_positive"]
    assert [r for r in result.repriced.rules if r.rule_id != "net_positive"] == kept
    net = result.repriced.rule("net_positive")
    assert net.reason.startswith(
        "Re-priced at approval, 2026-11-23 14:03 UTC, at $43210.99 per BTC"
    )
    assert "0.00136003 BTC" in net.reason
    assert result.repriced.decided_at == committed.decided_at
    assert result.refusal() is None


def test_a_repricing_that_pays_nothing_is_refused_and_says_why() -> None:
    """$1.80 at $60 000 = 3 000 sat − 2 000 = 1 000 sat; at $180 000 the $1.80 buys 1 000 sat,
    less than the fee: nothing would be paid (the docs' example)."""
    committed = _codexkey_refund("1.80", "60000")
    result = reprice(CODEXKEY, committed, RateFacts(BTC, Decimal(180000)), BTC_FEE, LATER)
    assert not result.allowed
    assert [r.rule_id for r in result.repriced.refusals] == ["net_positive"]
    assert result.new.net_native == Money(-1_000, BTC)
    assert "Nothing would be paid out" in (result.refusal() or "")


def test_the_same_rate_and_fee_change_nothing() -> None:
    committed = _codexkey_refund("60.00", "60000")
    result = reprice(CODEXKEY, committed, RateFacts(BTC, Decimal(60000)), BTC_FEE, LATER)
    assert result.allowed and not result.changed
    assert result.new.net_native == committed.breakdown.net_native


def test_only_at_approval_policies_reprice_and_only_their_own_requests() -> None:
    committed = _codexkey_refund("60.00", "60000")
    assert CODEXKEY.refund.pricing is Pricing.AT_APPROVAL
    assert CODEXKEY.withdrawal.pricing is Pricing.COMMITTED
    assert reprices(CODEXKEY, committed)
    # A request made under codexkey keeps its promise when another policy runs now, and the
    # default (every other preset) keeps the committed figures.
    assert not reprices(DEFAULT, replace(committed, policy="default"))
    renamed = with_overrides(CODEXKEY, {"name": "codexkey-eu"})
    assert not reprices(renamed, committed)
    for name in ("default", "codegateway", "ticketed-hosting", "activkode"):
        preset = load_preset(name)
        assert preset.refund.pricing is preset.withdrawal.pricing is Pricing.COMMITTED, name


def test_a_stored_decision_record_comes_back_whole() -> None:
    """What a request stores (`as_record`, JSON) is parsed back to the same decision."""
    decision = _codexkey_refund("60.00", "60000")
    assert decision_of(decision.as_record()) == decision
    refused = quote_withdrawal(
        CODEXKEY,
        AccountFacts(available_usd=Money(0, USD)),
        Money.parse("25.00", USD),
        BTC,
        RateFacts(BTC, Decimal("60000.5")),
        BTC_FEE,
        NOW,
    )
    assert decision_of(refused.as_record()) == refused


# --------------------------------------------------------------------------- the rounding rule

prices = st.integers(min_value=1, max_value=10**11).map(lambda n: Decimal(n).scaleb(-4))
WITHDRAWALS = {
    mode: with_overrides(DEFAULT, {"withdrawal": {"network_fee": mode, "pricing": "at_approval"}})
    for mode in ("deduct", "beyond_flat_fee", "house")
}
REFUNDS = {
    mode: with_overrides(DEFAULT, {"refund": {"network_fee": mode, "pricing": "at_approval"}})
    for mode in ("deduct", "house")
}


@st.composite
def market(draw: st.DrawFn, coin: Asset) -> tuple[RateFacts, NetworkFee]:
    fee_asset = FEE_ASSET[coin]
    amount = draw(st.integers(min_value=0, max_value=10 ** (fee_asset.decimals - 1)))
    fee_rate = None if fee_asset == coin else RateFacts(fee_asset, draw(prices))
    return RateFacts(coin, draw(prices)), NetworkFee(Money(amount, fee_asset), fee_rate)


def _worth(coins: Money, rate: RateFacts) -> Fraction:
    return Fraction(coins.amount, 10**coins.asset.decimals) * Fraction(rate.usd_per_unit)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), coin=st.sampled_from(tuple(FEE_ASSET)), cents=st.integers(2_000, 10**8))
def test_repriced_figures_follow_the_rounding_rule(
    data: st.DataObject, coin: Asset, cents: int
) -> None:
    """Whatever the committed and the new market, the re-priced figures satisfy the written
    rule: gross = fees + network fee charged + net exactly; the net is the coins' worth at the
    new rate rounded down to the micro-dollar; the coins are the USD owed converted down (in
    coins when the whole fee is paid in the payout coin); and they are what a fresh decision at
    the new rate would give."""
    kind = data.draw(st.sampled_from(("refund", "withdrawal")))
    policies = REFUNDS if kind == "refund" else WITHDRAWALS
    policy = policies[data.draw(st.sampled_from(sorted(policies)))]
    gross = Money(cents * 10_000, USD)
    first_rate, first_fee = data.draw(market(coin))
    now_rate, now_fee = data.draw(market(coin))

    def decide(rate: RateFacts, fee: NetworkFee) -> Decision:
        if kind == "withdrawal":
            account = AccountFacts(available_usd=gross)
            return quote_withdrawal(policy, account, gross, coin, rate, fee, NOW)
        topup = TopUpFacts("t", Money(1, coin), gross, NOW - timedelta(days=1), "sender")
        return quote_refund(policy, topup, AccountFacts(available_usd=gross), rate, fee, NOW)

    committed = decide(first_rate, first_fee)
    assume(committed.allowed)  # only committed (allowed) requests are re-priced
    result = reprice(policy, committed, now_rate, now_fee, LATER)
    b = result.new
    assert b.net_native is not None
    assert b.gross_usd == gross
    fees = b.handling_fee_usd + b.flat_fee_usd + b.provider_fee_usd
    assert (fees, b.destination) == (
        committed.breakdown.handling_fee_usd
        + committed.breakdown.flat_fee_usd
        + committed.breakdown.provider_fee_usd,
        committed.breakdown.destination,
    )
    assert gross == fees + b.network_fee_charged_usd + b.net_usd
    # The same figures a decision made now at that rate and fee shows.
    assert b == decide(now_rate, now_fee).breakdown
    assert result.allowed is b.net_native.is_positive
    if b.net_native.is_positive:
        worth = _worth(b.net_native, now_rate)
        assert Fraction(b.net_usd.amount) * MICRO <= worth < (b.net_usd.amount + 1) * MICRO
        owed = Fraction((gross - fees).amount) * MICRO
        fee_rate = now_fee.rate or now_rate
        fee_worth = _worth(now_fee.amount, fee_rate)
        assert fee_worth <= Fraction(b.network_fee_usd.amount) * MICRO < fee_worth + MICRO
        # Never more than owed; short of it by less than one minor unit plus the fee charged.
        assert worth <= owed
