"""A transfer that is its own unit of work (`transfers.commit_transfer`, issue 17).

On PostgreSQL it is one round trip: the call of `kassa_post_entry_alone` in autocommit. It must
answer exactly as `transfer` inside `db.transaction()` does — same checks, same idempotency
(replays, reused keys, refusals stored with their detail), nothing written when refused — and
the hot house account must not queue anyone before their own entry locks it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import Counter
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg.pq import Trace
from sqlalchemy import func, select, text
from tests.ledger.test_concurrency import at_once, tally, usd

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.ledger import house, transfers
from kassa.ledger.errors import (
    AccountNotFound,
    IdempotencyKeyReused,
    InsufficientFunds,
    LedgerInvariantBroken,
    UnbalancedTransaction,
)
from kassa.ledger.idempotency import Claim
from kassa.ledger.journal import SumOutOfRange
from kassa.ledger.model import TransactionKind
from kassa.ledger.tables import idempotency_record, ledger_posting, ledger_transaction
from kassa.money import BTC, MAX_AMOUNT, USD, Money

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory
    from tests.ledger.conftest import Books


def commit(books: Books, debit: int, credit: int, dollars: str, key: str | None) -> uuid.UUID:
    request = books.key(key, "spend", account=debit, amount=dollars) if key else None
    return transfers.commit_transfer(
        books.db,
        debit_account_id=debit,
        credit_account_id=credit,
        amount=usd(dollars),
        now=books.now,
        request=request,
    )


def counts(db: Database) -> tuple[int, int, int]:
    with db.transaction() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (ledger_transaction, ledger_posting, idempotency_record)
        )


def test_a_committed_transfer_moves_the_money_and_replays_under_its_key(books: Books) -> None:
    alice = books.customer("10.00")

    first = commit(books, alice, books.revenue, "3.00", "k-1")
    again = commit(books, alice, books.revenue, "3.00", "k-1")

    assert again == first
    assert books.available(alice) == usd("7.00")
    assert books.posted(books.revenue) == usd("3.00")
    assert books.stored_outcome("k-1") == "ok"
    with pytest.raises(IdempotencyKeyReused):
        commit(books, alice, books.revenue, "4.00", "k-1")
    books.assert_books_balance()


def test_a_refused_committed_transfer_stores_the_refusal_and_writes_nothing_else(
    books: Books,
) -> None:
    alice = books.customer("2.00")
    before = counts(books.db)

    with pytest.raises(InsufficientFunds) as refused:
        commit(books, alice, books.revenue, "3.00", "k-2")
    with pytest.raises(InsufficientFunds) as replayed:
        commit(books, alice, books.revenue, "3.00", "k-2")

    assert str(replayed.value) == str(refused.value)
    assert "has 2.00 USD available" in str(refused.value)
    assert counts(books.db) == (before[0], before[1], before[2] + 1)
    assert books.stored_outcome("k-2") == InsufficientFunds.code
    assert books.available(alice) == usd("2.00")
    books.assert_books_balance()


def test_a_committed_transfer_is_refused_like_a_transfer_when_malformed(books: Books) -> None:
    alice = books.customer("10.00")
    before = counts(books.db)

    with pytest.raises(AccountNotFound):
        commit(books, alice, 999_999, "1.00", "k-3")
    with pytest.raises(UnbalancedTransaction):
        transfers.commit_transfer(
            books.db,
            debit_account_id=alice,
            credit_account_id=books.revenue,
            amount=Money(1, BTC),
            now=books.now,
            request=None,
        )

    assert counts(books.db) == before
    books.assert_books_balance()


def test_a_key_claimed_in_another_transaction_cannot_commit_alone(books: Books) -> None:
    alice = books.customer("10.00")
    claimed = books.key("k-4", "spend").under(Claim(record_id=1))
    with pytest.raises(LedgerInvariantBroken, match="claimed in another transaction"):
        transfers.commit_transfer(
            books.db,
            debit_account_id=alice,
            credit_account_id=books.revenue,
            amount=usd("1.00"),
            now=books.now,
            request=claimed,
        )


def test_twenty_simultaneous_committed_spends_into_one_hot_account_stay_exact(
    databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    books = books_class(databases.new(pool_size=25), clock)
    alice = books.customer("31.00")

    results = at_once(
        books.db, 20, lambda i: commit(books, alice, books.revenue, "3.00", f"hot-{i}")
    )

    assert tally(results) == {"ok": 10, InsufficientFunds.code: 10}
    assert books.available(alice) == usd("1.00")
    assert books.posted(books.revenue) == usd("30.00")
    with books.db.transaction() as conn:
        stored = Counter(conn.execute(select(idempotency_record.c.outcome)).scalars())
    assert stored == {"ok": 10, InsufficientFunds.code: 10}
    books.assert_books_balance()


def test_a_committed_transfer_is_one_round_trip_without_begin_or_commit(
    pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    books = books_class(pg_databases.new(pool_size=1), clock)
    alice = books.customer("10.00")
    commit(books, alice, books.revenue, "1.00", "warm-up")  # prepares the statement

    messages = traced(books.db, lambda: commit(books, alice, books.revenue, "1.00", "traced"))

    sent = [m for m in messages if m[0] == "F"]
    assert [m[1] for m in sent] == ["Bind", "Describe", "Execute", "Sync"]
    assert not any(m[1] == "Query" for m in sent)  # no BEGIN, no COMMIT
    assert books.posted(books.revenue) == usd("2.00")


def traced(db: Database, work: object) -> list[tuple[str, str]]:
    """The protocol messages (direction, type) of `work` on the pool's only connection."""
    pooled = db.engine.raw_connection()
    driver: psycopg.Connection[object] = pooled.driver_connection  # type: ignore[assignment]
    pooled.close()
    with tempfile.TemporaryFile("w+") as log:
        driver.pgconn.trace(log.fileno())
        driver.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        try:
            work()  # type: ignore[operator]
        finally:
            driver.pgconn.untrace()
        os.fsync(log.fileno())
        log.seek(0)
        return [tuple(line.rstrip("\n").split("\t")[:3:2]) for line in log if line.strip()]  # type: ignore[misc]


def test_opening_the_house_revenue_account_does_not_wait_for_its_row_lock(
    pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    """Every usage batch opens house revenue before posting. `INSERT … ON CONFLICT DO NOTHING`
    on the existing row waited for whichever transaction had it locked, queueing every batch
    behind the one posting; reading it first does not wait."""
    books = books_class(pg_databases.new(), clock)
    alice = books.customer("10.00")
    with books.db.transaction() as holder:
        transfers.transfer(
            holder,
            debit_account_id=alice,
            credit_account_id=books.revenue,
            amount=usd("1.00"),
            now=books.now,
            request=None,
        )
        with books.db.transaction() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            opened = house.revenue(other, USD, books.now)
    assert opened.id == books.revenue


def test_a_committed_entry_carries_amounts_beyond_bigint_and_refuses_beyond_the_range(
    books: Books,
) -> None:
    """The amounts go as Python ints: past 2**63 psycopg sends numeric, and the stored
    function's range check still refuses a sum past 2**256-1, writing nothing."""
    huge = Money(2**200, USD)
    legs = [transfers.Leg(books.adjustments, huge), transfers.Leg(books.revenue, -huge)]
    transfers.commit_post(
        books.db, legs, kind=TransactionKind.ADJUSTMENT, now=books.now, request=None
    )
    assert books.posted(books.revenue) == huge
    before = counts(books.db)

    most = Money(MAX_AMOUNT, USD)
    with pytest.raises(SumOutOfRange):
        transfers.commit_post(
            books.db,
            [transfers.Leg(books.adjustments, most), transfers.Leg(books.revenue, -most)],
            kind=TransactionKind.ADJUSTMENT,
            now=books.now,
            request=None,
        )
    assert counts(books.db) == before
    books.assert_books_balance()
