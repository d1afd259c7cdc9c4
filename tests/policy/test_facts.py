"""Facts check their own invariants; a caller's mistake raises instead of becoming a refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from kassa.money import BTC, ETH, TRX, USD, USDT_ERC20, USDT_TRC20, Money
from kassa.policy import (
    AccountFacts,
    AccountState,
    NetworkFee,
    RateFacts,
    TopUpFacts,
    load_preset,
    quote_refund,
    quote_withdrawal,
)

NOW = datetime(2026, 3, 12, 10, 0, tzinfo=UTC)
USD_60 = Money(60_000_000, USD)
POLICY = load_preset("default")


def topup(**changes: object) -> TopUpFacts:
    fields: dict[str, object] = {
        "id": "t",
        "amount": Money(100_000, BTC),
        "credited_usd": USD_60,
        "paid_at": NOW - timedelta(days=1),
        "sender_address": "bc1q",
    }
    fields.update(changes)
    return TopUpFacts(**fields)  # type: ignore[arg-type]


def test_a_top_up_knows_its_chain() -> None:
    assert topup().chain == "btc"
    assert topup(amount=Money(5, USDT_ERC20)).chain == "eth"
    assert topup(amount=Money(5, USDT_TRC20)).chain == "tron"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount": Money(1, USD)}, "BTC, ETH, TRX or USDT"),
        ({"amount": Money(0, BTC)}, "must be positive"),
        ({"credited_usd": Money(1, BTC)}, "credited_usd must be USD"),
        ({"paid_at": datetime(2026, 3, 1)}, "timezone-aware"),
        ({"refund_count": -1}, "non-negative"),
        ({"sender_ambiguous": True}, "ambiguous sender"),
    ],
)
def test_top_up_facts_refuse_nonsense(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        topup(**changes)


def test_a_non_active_account_needs_the_time_of_its_state_change() -> None:
    with pytest.raises(ValueError, match="state_changed_at"):
        AccountFacts(available_usd=USD_60, state=AccountState.SUSPENDED)


def test_only_a_frozen_balance_may_be_negative_but_facts_do_not_judge() -> None:
    """A negative available balance is a fact (a reversed deposit); the policy judges it."""
    facts = AccountFacts(available_usd=Money(-1, USD))
    assert facts.available_usd.is_negative


@pytest.mark.parametrize("price", [Decimal(0), Decimal(-1), Decimal("NaN"), Decimal("Infinity")])
def test_a_rate_is_positive_and_finite(price: Decimal) -> None:
    with pytest.raises(ValueError, match="positive finite"):
        RateFacts(BTC, price)


def test_a_rate_prices_a_coin() -> None:
    with pytest.raises(ValueError, match="prices a coin"):
        RateFacts(USD, Decimal(1))


def test_a_fee_rate_prices_the_fee_asset() -> None:
    with pytest.raises(ValueError, match="fee rate prices"):
        NetworkFee(Money(1, ETH), RateFacts(TRX, Decimal(1)))


def test_refund_to_the_wallet_needs_a_rate_of_the_top_ups_asset() -> None:
    account = AccountFacts(available_usd=USD_60)
    fee = NetworkFee(Money(1, BTC))
    with pytest.raises(ValueError, match="needs the rate"):
        quote_refund(POLICY, topup(), account, None, fee, NOW)
    with pytest.raises(ValueError, match="the rate prices ETH"):
        quote_refund(POLICY, topup(), account, RateFacts(ETH, Decimal(1)), fee, NOW)


def test_the_fee_must_be_paid_in_the_chains_fee_asset() -> None:
    account = AccountFacts(available_usd=USD_60)
    with pytest.raises(ValueError, match="pays its network fee in ETH"):
        quote_withdrawal(
            POLICY,
            account,
            Money(30_000_000, USD),
            USDT_ERC20,
            RateFacts(USDT_ERC20, Decimal(1)),
            NetworkFee(Money(1, TRX)),
            NOW,
        )


def test_a_token_fee_needs_its_own_rate() -> None:
    account = AccountFacts(available_usd=USD_60)
    with pytest.raises(ValueError, match="needs its own USD rate"):
        quote_withdrawal(
            POLICY,
            account,
            Money(30_000_000, USD),
            USDT_TRC20,
            RateFacts(USDT_TRC20, Decimal(1)),
            NetworkFee(Money(1, TRX)),
            NOW,
        )


def test_amounts_asked_for_are_positive_usd() -> None:
    account = AccountFacts(available_usd=USD_60)
    rate = RateFacts(BTC, Decimal(50_000))
    fee = NetworkFee(Money(1, BTC))
    with pytest.raises(ValueError, match="positive USD"):
        quote_withdrawal(POLICY, account, Money(0, USD), BTC, rate, fee, NOW)
    with pytest.raises(ValueError, match="positive USD"):
        quote_refund(POLICY, topup(), account, rate, fee, NOW, amount_usd=Money(1, BTC))


def test_now_is_timezone_aware() -> None:
    account = AccountFacts(available_usd=USD_60)
    rate = RateFacts(BTC, Decimal(50_000))
    with pytest.raises(ValueError, match="timezone-aware"):
        quote_refund(
            POLICY,
            topup(),
            account,
            rate,
            NetworkFee(Money(1, BTC)),
            datetime(2026, 3, 12),
        )
