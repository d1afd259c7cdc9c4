"""/metrics after a real deposit and a real payout on the local Ethereum node: a top-up credited
by the real watcher, refunded by the real worker, read back from a scrape of the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from kassa.api import create_app
from kassa.config import Settings
from kassa.money import Money, asset
from kassa.payouts.model import RequestStatus

if TYPE_CHECKING:
    from tests.payouts.conftest import Stage

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("databases", ["sqlite"], indirect=True)]


def test_a_scrape_after_an_eth_top_up_and_its_refund(eth_stage: Stage) -> None:
    customer = eth_stage.customer(None)
    deposit = eth_stage.top_up(customer, Money.parse("0.02", asset("ETH")))
    request = eth_stage.refund(customer, deposit)
    eth_stage.pay(eth_stage.worker(), request.id)
    assert eth_stage.status(request.id) is RequestStatus.CONFIRMED

    app = create_app(Settings(), database=eth_stage.db, clock=eth_stage.clock)
    with TestClient(app) as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    series = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }

    def one(name: str, **labels: str) -> float:
        return series[(name, tuple(sorted(labels.items())))]

    assert one("kassa_deposits", chain="eth", asset="ETH", status="credited") == 1
    assert one("kassa_payout_requests", kind="refund", status="confirmed") == 1
    assert not [key for key in series if key[0] == "kassa_payout_oldest_age_seconds"]
    assert one("kassa_review_queue") == 0
    scanned = one("kassa_watcher_scanned_height", chain="eth")
    assert scanned > 0
    assert one("kassa_watcher_lag_blocks", chain="eth") == (
        one("kassa_watcher_head_height", chain="eth") - scanned
    )
    assert one("kassa_watcher_failing", chain="eth") == 0
    wallets = {
        dict(labels)["account"]: balance
        for (name, labels), balance in series.items()
        if name == "kassa_wallet_book_balance"
    }
    (tx,) = eth_stage.txs()
    sent = eth_stage.request(request.id).net_native.amount + int(tx.fee_paid_native)
    # The book balances, in ETH: the top-up in, the refund and its fee out of the hot wallet.
    assert wallets == {
        "wallet:eth-deposits:ETH": 0.02,
        "wallet:eth-hot:ETH": pytest.approx(-sent / 10**18, rel=1e-12),
    }
    ledger = {
        dict(labels)["kind"]: count
        for (name, labels), count in series.items()
        if name == "kassa_ledger_transactions_total"
    }
    # The top-up's credit and the refund's two postings (capture, payout).
    assert ledger == {"deposit": 1, "capture": 1, "payout": 1}, ledger
