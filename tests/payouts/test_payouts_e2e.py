"""Refunds and withdrawals paid end to end on the real local chains.

Default policy: a withdrawal of $25.00 pays $20.00 worth of coins minus the network fee the
worker measured on the chain at execution; a refund returns the top-up's USD value (fixed at
payment time) converted at the refund-date rate, minus the network fee, to the wallet that
paid. Every figure is checked on chain and in the ledger.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from kassa.chains.network import Chain
from kassa.events import outbox
from kassa.events.tables import event
from kassa.money import USD, Money, asset, convert_down
from kassa.payouts import hot_balances
from kassa.payouts.model import RequestStatus
from kassa.payouts.views import payout_view

if TYPE_CHECKING:
    from tests.payouts.conftest import Stage

# Slow (--durations): top-ups and payouts end to end on the local chains.
pytestmark = pytest.mark.slow

RATES = {"BTC": 60_000, "ETH": 3_000, "TRX": "0.25", "USDT-TRC20": 1, "USDT-ERC20": 1}


def _owed_native(owed: Money, code: str) -> int:
    """``owed`` USD in coins at the static rate, rounded down, in minor units."""
    rate = Fraction(str(RATES[code]))
    return convert_down(owed, rate.denominator, rate.numerator, asset(code)).amount


def _withdraw_and_check(stage: Stage, code: str) -> None:
    customer = stage.customer("100.00")
    destination = stage.fresh_address()
    request = stage.withdraw(customer, "25.00", code, destination)
    assert request.status is RequestStatus.APPROVED
    stage.pay(stage.worker(), request.id)

    done = stage.request(request.id)
    assert done.status is RequestStatus.CONFIRMED
    (tx,) = stage.txs()
    fee = done.network_fee_native
    assert fee is not None and fee.amount > 0
    # net = 25 − 5 − network fee, the fee measured on the chain at execution: deducted in
    # coins when the chain's fee asset is the payout asset, else in USD (USDT pays TRX gas).
    owed = Money.parse("20.00", USD)
    if fee.asset == done.net_native.asset:
        assert done.net_native.amount == _owed_native(owed, code) - fee.amount
    else:
        assert done.net_native.amount == _owed_native(owed - done.network_fee_usd, code)
    assert stage.received(destination, asset(code), tx.txid) == done.net_native.amount
    # The ledger: $25 left the balance, $5 is revenue, clearing is empty, and the network-fee
    # account holds exactly the fee paid minus the fee charged (both at the payout-time rate).
    assert stage.available(customer) == Money.parse("75.00", USD)
    assert stage.account_balance("house:revenue:USD") == 5_000_000
    assert stage.account_balance("clearing:payouts:USD") == 0
    assert done.gross_usd - done.fees_usd - done.network_fee_usd == done.net_usd
    assert int(tx.fee_paid_native) > 0
    # Its events, in order (issue 15); the last carries the request as the API shows it.
    with stage.db.transaction() as conn:
        assert outbox.types_of(conn, "withdrawal", done.id) == [
            "withdrawal.requested",
            "withdrawal.approved",
            "withdrawal.broadcast",
            "withdrawal.confirmed",
        ]
        last = conn.execute(
            select(event.c.data)
            .where(event.c.subject_kind == "withdrawal", event.c.subject_id == str(done.id))
            .order_by(event.c.seq.desc())
            .limit(1)
        ).scalar_one()
        assert json.loads(last) == payout_view(conn, done)
    # The rail reads its hot wallet for `hot_wallet.low`: below a threshold above what it holds.
    coin = asset(code)
    assert isinstance(stage.rail, hot_balances.HotBalances)
    with stage.db.transaction() as conn:
        held = stage.rail.hot_balance(conn, coin)
    assert held.is_positive
    hot_balances.check(stage.db, stage.clock, {coin: held + held}, {stage.chain: stage.rail})
    with stage.db.transaction() as conn:
        assert outbox.types_of(conn, "hot_wallet", code) == ["hot_wallet.low"]


def test_eth_withdrawal_arrives_net_of_flat_and_network_fee(eth_stage: Stage) -> None:
    _withdraw_and_check(eth_stage, "ETH")


def test_btc_withdrawal_arrives_net_of_flat_and_network_fee(btc_stage: Stage) -> None:
    _withdraw_and_check(btc_stage, "BTC")


def test_usdt_trc20_withdrawal_arrives_net_of_flat_and_network_fee(tron_stage: Stage) -> None:
    _withdraw_and_check(tron_stage, "USDT-TRC20")


def _refund_and_check(stage: Stage, code: str, amount: str) -> None:
    customer = stage.customer(None)
    coin = asset(code)
    sender_before = None
    deposit = stage.top_up(customer, Money.parse(amount, coin))
    assert deposit.sender is not None
    if stage.chain is not Chain.BTC:
        sender_before = stage.received(deposit.sender, coin)
    request = stage.refund(customer, deposit)
    assert request.destination == deposit.sender
    stage.pay(stage.worker(), request.id)

    done = stage.request(request.id)
    assert done.status is RequestStatus.CONFIRMED
    (tx,) = stage.txs()
    # USD fixed at payment time (the whole top-up), converted at the refund-date rate.
    assert done.gross_usd == Money.parse("60.00", USD)  # every top-up here is worth $60
    got = (
        stage.received(deposit.sender, coin, tx.txid)
        if sender_before is None
        else stage.received(deposit.sender, coin) - sender_before
    )
    assert got == done.net_native.amount
    assert done.net_native.amount > 0
    assert stage.available(customer) == Money(0, USD)
    assert stage.account_balance("clearing:payouts:USD") == 0
    with stage.db.transaction() as conn:
        assert outbox.types_of(conn, "refund", done.id)[-2:] == [
            "refund.broadcast",
            "refund.confirmed",
        ]
        assert outbox.types_of(conn, "deposit", deposit.id)[-1] == "deposit.credited"


def test_btc_top_up_is_refunded_to_the_sending_wallet(btc_stage: Stage) -> None:
    _refund_and_check(btc_stage, "BTC", "0.001")


def test_usdt_erc20_top_up_is_refunded_to_the_sending_wallet(eth_stage: Stage) -> None:
    _refund_and_check(eth_stage, "USDT-ERC20", "60")


def test_usdt_trc20_top_up_is_refunded_to_the_sending_wallet(tron_stage: Stage) -> None:
    _refund_and_check(tron_stage, "USDT-TRC20", "60")
