"""The payout worker's decisions, driven through every branch on an in-memory chain.

Figures: ETH = 3 000 USD (ask, no spread in the static source), a $25.00 withdrawal under the
default policy ($5 flat fee, network fee deducted), an estimated fee of 0.00042 ETH
(21 000 gas × 20 gwei = $1.26). So the customer is owed $20.00 = 0.006666666666666666 ETH,
minus the fee in coins: 0.006246666666666666 ETH is sent. Those coins are worth
$18.739999999999998, so under the rounding rule (docs/payouts.md "Figures and rounding": net USD
is the coins' value rounded down to the micro-dollar, the fee charged is the rest) the request
shows net $18.739999 and a fee charged of $1.260001.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Connection, select

from kassa.ledger import holds
from kassa.money import USD, Money
from kassa.payouts import store
from kassa.payouts.model import FEE_ABOVE_QUOTE, IllegalRequestTransition, RequestStatus
from kassa.payouts.rails.base import BroadcastOutcome, StoredTx, TxState
from kassa.payouts.store import events, get
from kassa.payouts.tables import payout_tx
from kassa.payouts.worker import transactions

if TYPE_CHECKING:
    from tests.payouts.worker.conftest import Bench

    from kassa.payouts.worker import RoundReport

CHARGED_MICRO_USD = 1_260_001
OWED_WEI = 6_666_666_666_666_666
FEE_WEI = 420_000 * 10**9
NET_WEI = OWED_WEI - FEE_WEI


def _status(bench: Bench, request_id: object) -> RequestStatus:
    with bench.db.transaction() as conn:
        return get(conn, request_id).status  # type: ignore[arg-type]


def _events(bench: Bench, request_id: object) -> list[dict[str, Any]]:
    # A connection of its own, closed here: one left open outlives the test's database.
    with bench.db.engine.connect() as conn:
        return events(conn, request_id)  # type: ignore[arg-type]


def _txs(bench: Bench) -> list[tuple[str, str]]:
    with bench.db.transaction() as conn:
        return [
            (row.txid, row.status)
            for row in conn.execute(select(payout_tx).order_by(payout_tx.c.created_at))
        ]


def test_withdrawal_is_signed_broadcast_confirmed_and_booked(bench: Bench) -> None:
    customer = bench.customer("100.00")
    request = bench.withdraw(customer, "25.00")
    assert request.status is RequestStatus.APPROVED
    worker = bench.worker()

    report = worker.run_once()

    assert report.signed == [request.id]
    assert _status(bench, request.id) is RequestStatus.BROADCAST
    assert len(bench.rail.broadcasts) == 1
    bench.rail.mine()
    report = worker.run_once()
    assert report.confirmed == [request.id]
    assert bench.rail.paid("0x" + "11" * 20) == NET_WEI

    with bench.db.transaction() as conn:
        done = get(conn, request.id)
    assert done.status is RequestStatus.CONFIRMED
    assert done.net_native == Money(NET_WEI, done.net_native.asset)
    assert done.network_fee_usd == Money(CHARGED_MICRO_USD, USD)
    assert done.net_usd == Money.parse("18.739999", USD)
    # The customer paid $25.00 (nothing pending any more); $5 is revenue.
    assert bench.available(customer) == Money.parse("75.00", USD)
    assert bench.account_balance("house:revenue:USD") == 5_000_000
    # The chain charged 90 % of the estimate ($1.134): the house kept $1.260001 − $1.134.
    assert bench.account_balance("house:network-fees:USD") == 1_134_000 - CHARGED_MICRO_USD
    assert bench.account_balance("clearing:payouts:USD") == 0
    assert [e["to"] for e in _events(bench, request.id)] == [
        "approved",
        "signed",
        "broadcast",
        "confirmed",
    ]


def test_a_second_round_pays_nothing_twice(bench: Bench) -> None:
    request = bench.withdraw(bench.customer(), "25.00")
    worker = bench.worker()
    worker.run_once()
    bench.rail.mine()
    worker.run_once()
    assert worker.run_once().idle
    assert len(bench.rail.broadcasts) == 1
    assert [s for _, s in _txs(bench)] == ["confirmed"]
    assert _status(bench, request.id) is RequestStatus.CONFIRMED


def test_unbroadcast_signed_payout_is_broadcast_with_the_same_bytes(bench: Bench) -> None:
    request = bench.withdraw(bench.customer(), "25.00")
    bench.rail.broadcast_answer = BroadcastOutcome.UNAVAILABLE
    worker = bench.worker()
    worker.run_once()
    assert _status(bench, request.id) is RequestStatus.SIGNED
    assert bench.rail.broadcasts == []

    bench.rail.broadcast_answer = BroadcastOutcome.ACCEPTED
    other = bench.worker("w2")  # another process after a crash
    other.run_once()
    assert _status(bench, request.id) is RequestStatus.BROADCAST
    assert len(bench.rail.txs) == 1
    (only,) = bench.rail.txs.values()
    assert bench.rail.broadcasts == [only.signed.raw]


def _approve_fee(bench: Bench, request_id: object, actor: str = "operator:test") -> None:
    with bench.db.transaction() as conn:
        now = bench.clock.now(conn)
        store.approve_fee(conn, request_id, actor=actor, note_text="spike", now=now)  # type: ignore[arg-type]


def test_a_fee_risen_within_the_factor_still_sends_the_committed_coins(bench: Bench) -> None:
    """Issue 14 item 1: the worker re-priced the fee at signing and rewrote net, network fee
    and net coins. The committed coins go out; the house pays the rise."""
    customer = bench.customer("100.00")
    request = bench.withdraw(customer, "25.00")
    bench.rail.fee_per_tx = FEE_WEI * 3 // 2  # 150 % of the quote: within the 200 % factor
    worker = bench.worker()
    assert worker.run_once().signed == [request.id]
    bench.rail.mine()
    worker.run_once()

    assert bench.rail.paid("0x" + "11" * 20) == NET_WEI
    with bench.db.transaction() as conn:
        done = get(conn, request.id)
    assert done.status is RequestStatus.CONFIRMED
    assert (done.net_native.amount, done.net_usd, done.network_fee_usd) == (
        request.net_native.amount,
        request.net_usd,
        request.network_fee_usd,
    )
    assert done.decision == request.decision
    assert bench.available(customer) == Money.parse("75.00", USD)
    # Charged $1.260001; paid 90 % of 0.00063 ETH at $3 000 = $1.701: the house bears the rest.
    assert bench.account_balance("house:network-fees:USD") == 1_701_000 - CHARGED_MICRO_USD


def test_a_fee_past_the_factor_waits_for_an_operator_then_the_house_pays_it(
    bench: Bench,
) -> None:
    customer = bench.customer("100.00")
    request = bench.withdraw(customer, "25.00")
    bench.rail.fee_per_tx = 10**16  # 0.01 ETH = $30, more than the $20 owed
    worker = bench.worker()
    report = worker.run_once()
    assert request.id in report.waiting
    with bench.db.transaction() as conn:
        waiting = get(conn, request.id)
    assert waiting.status is RequestStatus.APPROVED
    assert (waiting.wait_reason or "").startswith(FEE_ABOVE_QUOTE)
    assert "0.01 ETH" in (waiting.wait_reason or "")
    assert bench.rail.txs == {}
    bench.advance(timedelta(seconds=bench.settings.worker.retry_seconds))
    assert request.id in worker.run_once().waiting  # still too dear: never sent re-priced

    _approve_fee(bench, request.id)
    assert worker.run_once().signed == [request.id]
    bench.rail.mine()
    worker.run_once()
    assert bench.rail.paid("0x" + "11" * 20) == NET_WEI
    assert bench.available(customer) == Money.parse("75.00", USD)
    # Paid 90 % of 0.01 ETH = $27.00, charged $1.260001.
    assert bench.account_balance("house:network-fees:USD") == 27_000_000 - CHARGED_MICRO_USD
    reasons = [e["reason"] or "" for e in _events(bench, request.id)]
    assert any("paid by the house: spike" in r for r in reasons)


def test_a_payout_waiting_on_the_fee_can_be_rejected_and_the_funds_return(
    bench: Bench,
) -> None:
    customer = bench.customer("100.00")
    request = bench.withdraw(customer, "25.00")
    bench.rail.fee_per_tx = FEE_WEI * 5
    bench.worker().run_once()
    with bench.db.transaction() as conn:
        bench.payouts.reject(conn, request.id, actor="operator:test", reason="too dear")
    assert bench.available(customer) == Money.parse("100.00", USD)
    assert bench.rail.txs == {}


def test_fee_approval_is_refused_for_a_payout_not_waiting_on_its_fee(bench: Bench) -> None:
    request = bench.withdraw(bench.customer(), "25.00")
    with pytest.raises(IllegalRequestTransition):
        _approve_fee(bench, request.id)


def test_short_hot_wallet_waits_with_a_reason_then_pays(bench: Bench) -> None:
    customer = bench.customer("100.00")
    request = bench.withdraw(customer, "25.00")
    bench.rail.balance = 10**15
    worker = bench.worker()
    report = worker.run_once()
    assert request.id in report.waiting
    with bench.db.transaction() as conn:
        row = get(conn, request.id)
    assert row.status is RequestStatus.APPROVED
    assert bench.available(customer) == Money.parse("75.00", USD)  # still reserved

    bench.rail.balance = 10**19
    assert worker.run_once().signed == []  # not due again before retry_seconds
    bench.advance(timedelta(seconds=bench.settings.worker.retry_seconds))
    assert worker.run_once().signed == [request.id]


def test_dead_transaction_is_signed_again_and_paid_once(bench: Bench) -> None:
    request = bench.withdraw(bench.customer(), "25.00")
    worker = bench.worker()
    worker.run_once()
    (first,) = bench.rail.txs.values()
    first.state = TxState.DEAD  # e.g. a TRON transaction expired unconfirmed
    report = worker.run_once()
    assert report.resigned == [request.id]
    assert report.signed == [request.id]
    assert len(bench.rail.txs) == 2
    bench.rail.mine()
    worker.run_once()
    assert _status(bench, request.id) is RequestStatus.CONFIRMED
    assert bench.rail.paid("0x" + "11" * 20) == NET_WEI
    assert sorted(s for _, s in _txs(bench)) == ["confirmed", "dead"]
    assert (first.signed.txid, TxState.DEAD) in bench.rail.settled


def test_stuck_transaction_is_replaced_on_the_same_nonce(bench: Bench) -> None:
    request = bench.withdraw(bench.customer(), "25.00")
    worker = bench.worker()
    worker.run_once()
    bench.advance(timedelta(seconds=599))
    assert worker.run_once().replaced == []
    bench.advance(timedelta(seconds=2))
    report = worker.run_once()
    assert len(report.replaced) == 1
    assert {t.nonce for t in bench.rail.txs.values()} == {0}
    bench.rail.mine()
    worker.run_once()
    assert _status(bench, request.id) is RequestStatus.CONFIRMED
    assert bench.rail.paid("0x" + "11" * 20) == NET_WEI
    assert sorted(s for _, s in _txs(bench)) == ["confirmed", "dead"]


def test_reverted_payout_fails_books_the_burnt_fee_and_returns_funds(bench: Bench) -> None:
    customer = bench.customer("100.00")
    request = bench.withdraw(customer, "25.00")
    worker = bench.worker()
    worker.run_once()
    (tx,) = bench.rail.txs.values()
    tx.state = TxState.FAILED
    report = worker.run_once()
    assert report.failed == [request.id]
    assert bench.available(customer) == Money.parse("100.00", USD)
    # 90 % of 0.00042 ETH at $3 000 = $1.134 burnt, a cost of the house.
    assert bench.account_balance("house:network-fees:USD") == 1_134_000


def test_two_workers_never_claim_the_same_payout(bench: Bench) -> None:
    customer = bench.customer("500.00")
    requests = [bench.withdraw(customer, "25.00") for _ in range(4)]
    first, second = bench.worker("a"), bench.worker("b")
    a = first.run_once()
    b = second.run_once()
    assert sorted(a.signed + b.signed) == sorted(r.id for r in requests)
    assert not set(a.signed) & set(b.signed)
    assert len(bench.rail.txs) == 4


def test_cancelled_before_signing_is_never_signed(bench: Bench) -> None:
    customer = bench.customer("100.00")
    request = bench.withdraw(customer, "25.00")
    with bench.db.transaction() as conn:
        bench.payouts.cancel(conn, request.id, actor="test", reason="changed my mind")
    assert bench.worker().run_once().idle
    assert bench.rail.txs == {}
    assert bench.available(customer) == Money.parse("100.00", USD)


def test_a_worker_with_a_stale_view_leaves_a_payout_another_worker_settled(bench: Bench) -> None:
    # Worker b reads the signed transaction and asks the chain about it; meanwhile worker a
    # broadcasts it and settles it. b's answer (never broadcast) is stale by then: b sends the
    # same bytes again, and must not move the confirmed payout back to broadcast.
    request = bench.withdraw(bench.customer(), "25.00")
    a, b = bench.worker("a"), bench.worker("b")
    bench.rail.broadcast_answer = BroadcastOutcome.UNAVAILABLE
    a.run_once()
    assert _status(bench, request.id) is RequestStatus.SIGNED
    bench.rail.broadcast_answer = BroadcastOutcome.ACCEPTED

    def a_settles_it() -> None:
        a.run_once()  # broadcast
        bench.rail.mine()
        a.run_once()  # confirmed
        assert _status(bench, request.id) is RequestStatus.CONFIRMED

    bench.rail.after_status_read = a_settles_it
    report = b.run_once()

    assert report.confirmed == []
    assert _status(bench, request.id) is RequestStatus.CONFIRMED
    assert [status for _, status in _txs(bench)] == ["confirmed"]
    assert bench.rail.paid("0x" + "11" * 20) == NET_WEI


def test_a_long_round_keeps_its_claims_by_renewing_the_lease(bench: Bench) -> None:
    # Each payout's pricing takes 100 s of the 120 s lease. The second payout of the batch is
    # still this worker's when it comes to it: the lease is renewed as each one starts.
    customer = bench.customer("100.00")
    requests = [bench.withdraw(customer, "25.00") for _ in range(2)]
    bench.rail.before_estimate = lambda: bench.clock.advance(timedelta(seconds=100))
    report = bench.worker().run_once()
    assert sorted(report.signed) == sorted(r.id for r in requests)


def test_a_payout_taken_over_by_another_worker_is_not_worked_on(bench: Bench) -> None:
    # Worker a's round is so slow that its claim on the second payout lapses and worker b
    # claims it: a skips it (b signs it), and each payout is signed exactly once.
    customer = bench.customer("100.00")
    first, second = bench.withdraw(customer, "25.00"), bench.withdraw(customer, "25.00")
    a, b = bench.worker("a"), bench.worker("b")
    b_report: list[RoundReport] = []

    def slow_then_b_runs() -> None:
        bench.rail.before_estimate = None
        bench.clock.advance(timedelta(seconds=121))
        b_report.append(b.run_once())

    bench.rail.before_estimate = slow_then_b_runs
    a_report = a.run_once()
    assert len(bench.rail.txs) == 2
    assert {*a_report.signed, *b_report[0].signed} == {first.id, second.id}
    assert not set(a_report.signed) & set(b_report[0].signed)


def test_a_reverted_fee_bump_fails_the_payout_and_retires_the_original(bench: Bench) -> None:
    # The stuck original is replaced; the replacement is mined and reverts. The original can
    # never be mined now (its nonce is used): it must be retired with the failure, not later
    # "proven dead" and sent back to approved (which a failed request cannot be), wedging
    # every round for every other payout.
    customer = bench.customer("500.00")
    request = bench.withdraw(customer, "25.00")
    worker = bench.worker()
    worker.run_once()
    bench.advance(timedelta(seconds=601))
    assert len(worker.run_once().replaced) == 1
    original, replacement = bench.rail.txs.values()
    original.state = TxState.UNKNOWN  # not known dead yet when the replacement settles
    replacement.state = TxState.FAILED
    report = worker.run_once()
    assert report.failed == [request.id]
    assert sorted(s for _, s in _txs(bench)) == ["dead", "failed"]

    original.state = TxState.DEAD
    later = bench.withdraw(customer, "25.00")
    report = worker.run_once()
    assert report.errors == []
    assert report.signed == [later.id]
    assert _status(bench, request.id) is RequestStatus.FAILED
    assert bench.available(customer) == Money.parse("475.00", USD)


def test_two_workers_settling_both_dead_versions_at_once_strand_nothing(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both versions of a spend are proven dead, and two workers settle one each at the same
    # moment. Each must see what the other decided: the payout goes back to approved once,
    # is signed again and paid once (not left "broadcast" with nothing in flight).
    request = bench.withdraw(bench.customer(), "25.00")
    a, b = bench.worker("a"), bench.worker("b")
    a.run_once()
    bench.advance(timedelta(seconds=601))
    assert len(a.run_once().replaced) == 1
    for fake in bench.rail.txs.values():
        fake.state = TxState.DEAD

    # Hold each worker between reading the other versions and deciding, until the other
    # arrives (or 2 s pass: with the versions locked together, it cannot arrive).
    meet = threading.Barrier(2, timeout=2)
    siblings = transactions.siblings

    def slow_siblings(conn: Connection, tx: StoredTx) -> Sequence[Any]:
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait()
        return siblings(conn, tx)

    monkeypatch.setattr(transactions, "siblings", slow_siblings)
    reports: list[RoundReport] = []
    threads = [threading.Thread(target=lambda w=w: reports.append(w.run_once())) for w in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    monkeypatch.undo()

    assert [r.errors for r in reports] == [[], []]
    a.run_once()
    bench.rail.mine()
    a.run_once()
    assert _status(bench, request.id) is RequestStatus.CONFIRMED
    assert bench.rail.paid("0x" + "11" * 20) == NET_WEI


def test_a_payout_hold_resolved_behind_the_workers_back_is_not_half_settled(
    bench: Bench,
) -> None:
    # Someone voids the payout's hold while its transaction is in flight; then it confirms.
    # Capturing the hold is refused: nothing of the settlement may be committed (not the
    # transaction as confirmed, not half the books); the error is reported every round for
    # an operator, and the other payouts go on.
    customer = bench.customer("100.00")
    request = bench.withdraw(customer, "25.00")
    worker = bench.worker()
    worker.run_once()
    with bench.db.transaction() as conn:
        holds.void_hold(conn, request.hold_id, now=bench.clock.now(conn), request=None)
    bench.rail.mine()
    report = worker.run_once()
    assert len(report.errors) == 1 and "HoldAlreadyResolved" in report.errors[0]
    assert _status(bench, request.id) is RequestStatus.BROADCAST
    assert [s for _, s in _txs(bench)] == ["broadcast"]
    assert bench.account_balance("clearing:payouts:USD") == 0
    assert len(worker.run_once().errors) == 1  # still there, still loud


def test_a_transaction_the_node_refuses_as_too_cheap_is_replaced_once_stuck(
    bench: Bench,
) -> None:
    # The node dropped the payout (fees rose) and now refuses its bytes as underpriced. It is
    # not left to be refused forever: once stuck, it is replaced on the same nonce with a
    # higher fee, and the replacement pays once.
    request = bench.withdraw(bench.customer(), "25.00")
    worker = bench.worker()
    worker.run_once()
    (first,) = bench.rail.txs.values()
    first.state = TxState.UNKNOWN  # evicted from the mempool
    bench.rail.too_cheap.add(first.signed.txid)
    assert worker.run_once().replaced == []  # refused, but not stuck for long yet
    bench.advance(timedelta(seconds=601))
    report = worker.run_once()
    assert len(report.replaced) == 1
    assert {t.nonce for t in bench.rail.txs.values()} == {0}
    bench.rail.mine()
    worker.run_once()
    assert _status(bench, request.id) is RequestStatus.CONFIRMED
    assert bench.rail.paid("0x" + "11" * 20) == NET_WEI
    assert sorted(s for _, s in _txs(bench)) == ["confirmed", "dead"]


def test_a_stuck_payout_is_not_bumped_past_the_fee_factor_until_an_operator_approves(
    bench: Bench,
) -> None:
    """A replacement is a fee rise too: one that would pay more than the configured factor of
    the quoted fee waits for an operator like a first transaction would; the stuck transaction
    stays in flight meanwhile, and after approve-fee the replacement goes out."""
    bench.settings = bench.settings.model_copy(
        update={"worker": bench.settings.worker.model_copy(update={"bump_percent": 150})}
    )
    request = bench.withdraw(bench.customer(), "25.00")
    worker = bench.worker()
    worker.run_once()
    bench.advance(timedelta(seconds=601))
    report = worker.run_once()
    assert report.replaced == []
    assert report.waiting[request.id].startswith(FEE_ABOVE_QUOTE)
    with bench.db.transaction() as conn:
        waiting = get(conn, request.id)
    assert waiting.status is RequestStatus.BROADCAST
    assert "to replace the stuck" in (waiting.wait_reason or "")
    assert len(_txs(bench)) == 1  # no replacement was stored or sent
    assert worker.run_once().replaced == []
    assert [e for e in _events(bench, request.id) if "above" in (e["reason"] or "")][:1]

    with bench.db.transaction() as conn:
        now = bench.clock.now(conn)
        store.approve_fee(conn, request.id, actor="operator:o", note_text=None, now=now)
    assert len(worker.run_once().replaced) == 1
    bench.rail.mine()
    worker.run_once()
    with bench.db.transaction() as conn:
        done = get(conn, request.id)
    assert done.status is RequestStatus.CONFIRMED and done.wait_reason is None
