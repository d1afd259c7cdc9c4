"""Re-pricing at approval end to end on bitcoin regtest (issue 14): a codexkey refund waits in
review, BTC falls, the operator sees the re-priced figures, approves, and the worker sends the
re-priced coins — read from the chain — while the books clear at the new split.

A real top-up credited by the real watcher at the static $60 000; the market moves with the
devnet market control (`kassa.pricing.market`), as ``POST /v1/admin/rates`` does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from kassa.money import BTC, USD, Money, convert_up
from kassa.payouts import store
from kassa.payouts.model import RequestStatus
from kassa.policy import load_preset
from kassa.pricing import market
from kassa.pricing.model import Symbol
from kassa.pricing.service import rules_of
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    from tests.payouts.conftest import Stage

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("databases", ["sqlite"], indirect=True)]


def test_a_codexkey_refund_repriced_at_approval_pays_the_new_coins(btc_stage: Stage) -> None:
    stage = btc_stage
    stage.payouts = replace(stage.payouts, policy=load_preset("codexkey"))
    customer = stage.customer(None)
    deposit = stage.top_up(customer, Money.parse("0.001", BTC))  # $60.00 at $60 000
    assert deposit.sender is not None
    refund = stage.refund(customer, deposit)
    # $60 / $60 000 = 100 000 sat − the 2 000 sat fee estimate = 98 000 sat ($58.80).
    assert refund.status is RequestStatus.PENDING_REVIEW
    assert (refund.net_native, refund.net_usd) == (Money(98_000, BTC), Money(58_800_000, USD))

    # Two days in review, then BTC falls to $50 000.
    stage.clock.advance(timedelta(days=2))
    with stage.db.transaction() as conn:
        now = stage.clock.now(conn)
        market.set_rate(conn, Symbol.BTC, Decimal(50000), now, rules_of(PricingSettings()))

    preview = stage.payouts.preview_repricing(stage.request(refund.id))
    assert preview is not None and preview.allowed
    assert preview.old.net_native == Money(98_000, BTC)
    assert preview.new.net_native == Money(118_000, BTC)  # 120 000 − 2 000 sat

    locks = stage.payouts.approval_locks(refund.id)
    with stage.db.transaction() as conn:
        approved = stage.payouts.approve(conn, refund.id, actor="operator:ann", locks=locks)
        history = store.events(conn, refund.id)

    assert approved.status is RequestStatus.APPROVED
    assert (approved.net_native, approved.net_usd) == (Money(118_000, BTC), Money(59_000_000, USD))
    assert approved.network_fee_usd == Money(1_000_000, USD)  # 2 000 sat at $50 000
    assert approved.gross_usd == refund.gross_usd
    [entry] = [e for e in history if e["kind"] == store.REPRICED]
    assert (entry["actor"], entry["at"]) == ("operator:ann", now)
    detail = entry["detail"]
    assert (detail["committed"]["rate"], detail["repriced"]["rate"]) == ("60000", "50000")
    assert detail["committed"]["net_native"] == {"amount": "0.00098", "asset": "BTC"}
    assert detail["repriced"]["net_native"] == {"amount": "0.00118", "asset": "BTC"}
    assert detail["repriced"]["net"] == {"amount": "59.00", "asset": "USD"}

    stage.pay(stage.worker(), refund.id)

    done = stage.request(refund.id)
    assert done.status is RequestStatus.CONFIRMED
    [tx] = [tx for tx in stage.txs() if tx.status == "confirmed"]
    assert stage.received(deposit.sender, BTC, tx.txid) == 118_000
    # The books cleared at the re-priced split: the customer gave the $60.00 gross, the
    # clearing account is empty, and the network-fee account holds paid − charged.
    assert stage.available(customer) == Money(0, USD)
    assert stage.account_balance("clearing:payouts:USD") == 0
    paid_usd = convert_up(Money(int(tx.fee_paid_native), BTC), 50_000, 1, USD)
    assert (
        stage.account_balance("house:network-fees:USD") == (paid_usd - Money(1_000_000, USD)).amount
    )
