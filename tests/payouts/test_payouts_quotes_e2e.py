"""Binding quotes end to end on bitcoin regtest (issue 14): the destination receives exactly the
quoted net coins, read from the chain, even when the fee rose between quote and execution; the
house pays the real fee and ``house:network-fees:USD`` holds paid − charged; a fee past the
configured factor waits for an operator instead of being paid silently.

The fee "rises" by raising the rail's fee rate between the quote and the worker's round: on
regtest the node has no estimate, so the rail pays ``fallback_sat_per_kvb`` — the same knob a
node's higher estimate turns on a real network.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from kassa.chains.network import Chain
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.money import BTC, USD, Money, convert_up
from kassa.payouts import store
from kassa.payouts.model import FEE_ABOVE_QUOTE, PayoutRequest, RequestStatus
from kassa.payouts.runtime import build_rail

if TYPE_CHECKING:
    from tests.payouts.conftest import Stage

    from kassa.accounts.service import CustomerAccount

pytestmark = pytest.mark.slow

BTC_USD = 60_000  # the static rate of the local stack


def _quoted_withdrawal(
    stage: Stage, destination: str
) -> tuple[CustomerAccount, Money, PayoutRequest]:
    """Quote a $25.00 BTC withdrawal and commit it by its quote id."""
    customer = stage.customer("100.00")
    amount = Money.parse("25.00", USD)
    decision, quote = stage.payouts.quote_withdrawal(customer, amount, BTC, destination)
    assert quote is not None and decision.breakdown.net_native is not None
    locks = stage.payouts.quote_locks(quote.id)
    with stage.db.transaction() as conn:
        request = stage.payouts.create_withdrawal(
            conn,
            customer,
            amount,
            BTC,
            destination,
            locks,
            request=Request.of(IdempotencyKey("test", uuid.uuid4().hex), "w", {}),
            actor="test",
        )
    assert request.quote_id == quote.id
    assert request.status is RequestStatus.APPROVED
    return customer, decision.breakdown.net_native, request


def _raise_fee(stage: Stage, sat_per_kvb: int) -> None:
    """The chain now asks more: the rail the worker uses pays a higher fee rate."""
    stage.close()
    stage.settings = stage.settings.model_copy(
        update={"btc": stage.settings.btc.model_copy(update={"fallback_sat_per_kvb": sat_per_kvb})}
    )
    stage.rail = build_rail(stage.chains, stage.settings, stage.signer, Chain.BTC)


def _fee_paid(stage: Stage) -> tuple[str, int]:
    (tx,) = [tx for tx in stage.txs() if tx.status == "confirmed"]
    return tx.txid, int(tx.fee_paid_native)


def test_the_quoted_coins_arrive_when_the_fee_rose_and_the_house_pays_the_rise(
    btc_stage: Stage,
) -> None:
    stage = btc_stage
    destination = stage.fresh_address()
    customer, quoted_net, request = _quoted_withdrawal(stage, destination)
    quoted_fee = request.network_fee_native
    assert quoted_fee is not None
    _raise_fee(stage, 18_000)  # ~1.3× the quoted 2 000 sat: within the 200 % factor

    stage.pay(stage.worker(), request.id)

    done = stage.request(request.id)
    assert done.status is RequestStatus.CONFIRMED
    txid, paid = _fee_paid(stage)
    assert paid > quoted_fee.amount  # the fee did rise
    assert stage.received(destination, BTC, txid) == quoted_net.amount == done.net_native.amount
    charged = done.network_fee_usd
    paid_usd = convert_up(Money(paid, BTC), BTC_USD, 1, USD)
    assert stage.account_balance("house:network-fees:USD") == (paid_usd - charged).amount
    assert stage.available(customer) == Money.parse("75.00", USD)


def test_a_fee_past_the_factor_waits_until_an_operator_lets_the_house_pay_it(
    btc_stage: Stage,
) -> None:
    stage = btc_stage
    destination = stage.fresh_address()
    _, quoted_net, request = _quoted_withdrawal(stage, destination)
    _raise_fee(stage, 60_000)  # ~4× the quoted fee
    worker = stage.worker()

    assert request.id in worker.run_once().waiting
    waiting = stage.request(request.id)
    assert waiting.status is RequestStatus.APPROVED
    assert (waiting.wait_reason or "").startswith(FEE_ABOVE_QUOTE)
    assert stage.txs() == []

    with stage.db.transaction() as conn:
        store.approve_fee(
            conn, request.id, actor="operator:test", note_text=None, now=stage.clock.now(conn)
        )
    stage.pay(worker, request.id)
    done = stage.request(request.id)
    txid, paid = _fee_paid(stage)
    assert stage.received(destination, BTC, txid) == quoted_net.amount
    paid_usd = convert_up(Money(paid, BTC), BTC_USD, 1, USD)
    assert (
        stage.account_balance("house:network-fees:USD") == (paid_usd - done.network_fee_usd).amount
    )
