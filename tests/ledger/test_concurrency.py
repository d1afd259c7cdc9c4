"""The ledger under simultaneous requests (docs/domain.md §1, §3): any number of API processes
share one PostgreSQL, so races must end exactly as if the requests had queued — no overspend,
one effect per idempotency key, no deadlocks, one winner per hold, one reversal per transaction.
SQLite serialises writers; the spend race runs there too.

Each race releases its threads together with a `threading.Barrier`, after warming the pool so
that no thread is still connecting when the others start.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import func, select

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.errors import KassaError
from kassa.ledger import holds, transfers
from kassa.ledger.errors import (
    AlreadyReversed,
    HoldAlreadyResolved,
    HoldExpired,
    InsufficientFunds,
)
from kassa.ledger.model import HoldStatus, TransactionKind
from kassa.ledger.tables import idempotency_record, ledger_transaction
from kassa.money import USD, Money

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory
    from tests.ledger.conftest import Books

T = TypeVar("T")


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD, allow_negative=True)


def at_once(db: Database, n: int, work: Callable[[int], T]) -> list[T | BaseException]:
    """Run `work(0) … work(n-1)` in n threads released together; each result or exception."""
    connections = [db.engine.connect() for _ in range(n)]
    for connection in connections:
        connection.close()
    barrier = threading.Barrier(n)
    results: list[T | BaseException] = [RuntimeError("did not finish")] * n

    def run(i: int) -> None:
        barrier.wait(timeout=60)
        try:
            results[i] = work(i)
        except BaseException as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,), name=f"race-{i}") for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    return results


def tally(results: Sequence[object]) -> Counter[str]:
    """How many results were ids, and how many of each refusal (or other exception)."""
    return Counter(
        "ok"
        if isinstance(r, uuid.UUID)
        else r.code
        if isinstance(r, KassaError)
        else type(r).__name__
        for r in results
    )


def test_fifty_simultaneous_three_dollar_spends_from_one_hundred_dollars_leave_exactly_one(
    databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    books = books_class(databases.new(pool_size=60), clock)
    alice = books.customer("100.00")

    results = at_once(books.db, 50, lambda i: books.spend(alice, "3.00", key=f"usage-{i}"))

    assert tally(results) == {"ok": 33, InsufficientFunds.code: 17}
    assert books.available(alice) == usd("1.00")
    assert books.posted(books.revenue) == usd("99.00")
    books.assert_books_balance()
    with books.db.transaction() as conn:
        stored = Counter(conn.execute(select(idempotency_record.c.outcome)).scalars())
    assert stored == {"ok": 33, InsufficientFunds.code: 17}


def test_twenty_simultaneous_retries_of_one_request_post_it_once(
    pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    books = books_class(pg_databases.new(pool_size=30), clock)
    alice = books.customer("100.00")

    results = at_once(books.db, 20, lambda _: books.spend(alice, "3.00", key="usage-1"))

    assert tally(results) == {"ok": 20}
    assert len(set(results)) == 1
    with books.db.transaction() as conn:
        usage = conn.execute(
            select(func.count())
            .select_from(ledger_transaction)
            .where(ledger_transaction.c.kind == str(TransactionKind.USAGE))
        ).scalar_one()
    assert usage == 1
    assert books.available(alice) == usd("97.00")
    books.assert_books_balance()


def test_transfers_in_opposite_directions_around_a_ring_neither_deadlock_nor_lose_money(
    pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    books = books_class(pg_databases.new(pool_size=20), clock)
    ring = [books.customer("1000.00") for _ in range(4)]
    rounds = 15

    def traffic(thread: int) -> Counter[int]:
        """Thread 2k sends clockwise from ring[k], thread 2k+1 counter-clockwise into it; every
        third entry is a three-legged one listing its accounts in a scrambled order."""
        moved: Counter[int] = Counter()
        k = thread // 2
        here, there = ring[k], ring[(k + 1) % 4]
        if thread % 2:
            here, there = there, here
        third = ring[(k + 2) % 4]
        for n in range(rounds):
            with books.db.transaction() as conn:
                if n % 3 == 2:
                    transfers.post(
                        conn,
                        [
                            transfers.Leg(third, usd("-1.00")),
                            transfers.Leg(here, usd("2.00")),
                            transfers.Leg(there, usd("-1.00")),
                        ],
                        kind=TransactionKind.TRANSFER,
                        now=books.now,
                        request=None,
                    )
                    moved[here] -= 2_000_000
                    moved[there] += 1_000_000
                    moved[third] += 1_000_000
                else:
                    transfers.transfer(
                        conn,
                        debit_account_id=here,
                        credit_account_id=there,
                        amount=usd("1.00"),
                        now=books.now,
                        request=None,
                    )
                    moved[here] -= 1_000_000
                    moved[there] += 1_000_000
        return moved

    results = at_once(books.db, 8, traffic)

    failures = [r for r in results if isinstance(r, BaseException)]
    assert failures == []
    moved: Counter[int] = Counter()
    for result in results:
        assert isinstance(result, Counter)
        moved.update(result)
    for account in ring:
        assert books.available(account).amount == 1_000_000_000 + moved[account]
    assert sum(books.available(account).amount for account in ring) == 4_000_000_000
    assert books.snapshot().transactions == 4 + 8 * rounds
    books.assert_books_balance()


RIVALS = [("capture", "void"), ("capture", "capture"), ("void", "void"), ("void", "capture")]


def test_two_resolvers_of_one_hold_racing_leave_exactly_one_winner(
    pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    books = books_class(pg_databases.new(pool_size=10), clock)
    alice = books.customer("100.00")
    captures_won = 0

    for round_, (first, second) in enumerate(RIVALS * 3):
        hold = books.hold(alice, "10.00")

        def resolve(
            i: int, hold_id: uuid.UUID = hold.id, actions: tuple[str, str] = (first, second)
        ) -> str:
            action = actions[i]
            with books.db.transaction() as conn:
                if action == "capture":
                    holds.capture_hold(conn, hold_id, now=books.now, request=None)
                else:
                    holds.void_hold(conn, hold_id, now=books.now, request=None)
            return action

        results = at_once(books.db, 2, resolve)

        winners = [r for r in results if isinstance(r, str)]
        losers = [r for r in results if not isinstance(r, str)]
        assert len(winners) == 1, (round_, results)
        assert isinstance(losers[0], HoldAlreadyResolved), (round_, results)
        resolved = books.get_hold(hold.id)
        expected = HoldStatus.CAPTURED if winners[0] == "capture" else HoldStatus.VOIDED
        assert resolved.status is expected
        captures_won += winners[0] == "capture"

    balance = books.balance(alice)
    assert balance.pending_outgoing == usd("0")
    assert balance.posted == usd("100.00") - usd("10.00") * captures_won
    books.assert_books_balance()


def test_two_simultaneous_reversals_of_one_transaction_post_one_and_refuse_the_other(
    pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    books = books_class(pg_databases.new(pool_size=10), clock)
    alice = books.customer()

    for round_ in range(5):
        top_up = books.deposit(alice, "10.00")

        def reverse(i: int, top_up: uuid.UUID = top_up, r: int = round_) -> uuid.UUID:
            return books.reverse(top_up, key=f"reorg-{r}-{i}")

        results = at_once(books.db, 2, reverse)

        assert tally(results) == {"ok": 1, AlreadyReversed.code: 1}, (round_, results)

    assert books.available(alice) == usd("0")
    books.assert_books_balance()


def test_captures_racing_the_expiry_sweep_expire_each_hold_once(
    pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    books = books_class(pg_databases.new(pool_size=10), clock)
    alice = books.customer("100.00")
    due = [
        books.hold(alice, "1.00", expires_at=books.now + timedelta(minutes=20)) for _ in range(30)
    ]
    books.clock.advance(timedelta(minutes=21))

    def sweep_or_capture(i: int) -> list[uuid.UUID] | Counter[str]:
        if i == 0:
            return books.expire_due_holds()
        refused: Counter[str] = Counter()
        for hold in due[i - 1 :: 2]:
            try:
                books.capture(hold.id)
            except (HoldExpired, HoldAlreadyResolved) as error:
                refused[error.code] += 1
        return refused

    swept, *captures = at_once(books.db, 3, sweep_or_capture)

    assert isinstance(swept, list)
    refusals: Counter[str] = Counter()
    for capture in captures:
        assert isinstance(capture, Counter)
        refusals.update(capture)
    # Every capture was refused as expired, whether the sweep or the capture itself expired
    # the hold; each hold was expired exactly once (by one of them).
    assert refusals == Counter({HoldExpired.code: len(due)})
    assert {books.get_hold(h.id).status for h in due} == {HoldStatus.EXPIRED}
    assert books.balance(alice).pending_outgoing == usd("0")
    assert books.available(alice) == usd("100.00")
    books.assert_books_balance()
