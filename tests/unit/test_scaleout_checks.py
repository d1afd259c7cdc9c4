"""The scale-out run's exactly-once checks (kassa_dev.bench._scaleout_checks) are not vacuous:
on rows shaped like the database's and transfers like the chain's, each way of moving money
twice or not at all is reported, and a clean run is not."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from kassa.chains.network import Chain
from kassa.deposits.addresses import match_key
from kassa_dev.bench._scaleout_checks import deposit_problems, payout_problems
from kassa_dev.bench._scaleout_load import SentDeposit

ADDRESS = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def _sent(txid: str | None = "0xAB", amount: int = 100_000) -> SentDeposit:
    return SentDeposit(Chain.BTC, "BTC", ADDRESS, amount, txid)


def _row(txid: str = "ab", **changes: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "txid": txid,
        "asset": "BTC",
        "amount": 100_000,
        "status": "credited",
        "credit_count": 1,
        "credit_transaction_id": uuid.uuid4(),
        "address": ADDRESS,
    }
    return SimpleNamespace(**(values | changes))


def test_a_deposit_credited_once_is_clean_whatever_the_txid_case_and_prefix() -> None:
    row = _row()
    assert deposit_problems([_sent()], [row], {row.credit_transaction_id}) == []


def test_every_way_of_crediting_a_deposit_twice_or_not_at_all_is_reported() -> None:
    once = _row()
    twice = _row(credit_count=2)
    assert deposit_problems([_sent()], [twice], {twice.credit_transaction_id})
    pending = _row(status="confirming", credit_transaction_id=None)
    assert deposit_problems([_sent()], [pending], set())
    # A second row for the same transfer, a row nobody sent, a credit missing from the ledger.
    double = _row(credit_transaction_id=uuid.uuid4())
    both = {once.credit_transaction_id, double.credit_transaction_id}
    assert deposit_problems([_sent()], [once, double], both)
    stranger = _row(txid="cd")
    assert deposit_problems(
        [_sent()], [once, stranger], {once.credit_transaction_id, stranger.credit_transaction_id}
    )
    assert deposit_problems([_sent()], [once], set())
    assert deposit_problems([_sent()], [], set())


def test_a_faucet_call_that_never_returned_is_matched_by_address_and_amount() -> None:
    row = _row(txid="ef")
    assert deposit_problems([_sent(None)], [row], {row.credit_transaction_id}) == []
    other = _row(txid="ef", amount=5)
    assert deposit_problems([_sent(None)], [other], {other.credit_transaction_id})


def test_a_payout_must_be_on_chain_exactly_once_with_its_net_amount() -> None:
    row = SimpleNamespace(id="p1", asset="ETH", destination="0x" + "11" * 20, net_native=7)
    key = (match_key(Chain.ETH, row.destination), "ETH")
    assert payout_problems(Chain.ETH, [row], {key: [7]}) == []
    assert payout_problems(Chain.ETH, [row], {key: [7, 7]})  # paid twice
    assert payout_problems(Chain.ETH, [row], {key: [6]})  # a different amount
    assert payout_problems(Chain.ETH, [row], {})  # never paid
