"""`transfers.post_many`: a batch of journal transactions, each under its own key, posted with
the same answers, rows and errors as `post` one after another. On PostgreSQL the batch's calls
go to the database in one pipeline (one round trip, the deposit watchers' credit batches);
a refusal or error inside the batch sends it back to a savepoint and posts it again one entry
at a time, so what is stored and raised is exactly what the sequential posts give."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import event as sqlalchemy_event

from kassa.db import Database
from kassa.ledger.errors import AccountNotFound, InsufficientFunds, UnbalancedTransaction
from kassa.ledger.journal import Entry, Line, SumOutOfRange, journal_for
from kassa.ledger.model import TransactionKind
from kassa.ledger.transfers import Leg, NewTransaction, post_many
from kassa.money import MAX_AMOUNT, USD, Money

if TYPE_CHECKING:
    from tests.ledger.conftest import Books


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD, allow_negative=True)


def _spend(books: Books, account: int, dollars: str, key: str) -> NewTransaction:
    return NewTransaction(
        [Leg(account, usd(dollars)), Leg(books.revenue, -usd(dollars))],
        kind=TransactionKind.USAGE,
        request=books.key(key, "spend", account=account, amount=dollars),
        memo=f"spend {dollars}",
    )


def _split(books: Books, account: int, dollars: str, key: str) -> NewTransaction:
    """Four lines: through the general posting function, not the two-line one."""
    half = usd(dollars).amount // 2
    return NewTransaction(
        [
            Leg(account, Money(half, USD)),
            Leg(account, usd(dollars) - Money(half, USD)),
            Leg(books.revenue, -Money(half, USD)),
            Leg(books.adjustments, -(usd(dollars) - Money(half, USD))),
        ],
        kind=TransactionKind.USAGE,
        request=books.key(key, "split", account=account, amount=dollars),
    )


def test_a_batch_posts_each_transaction_once_in_one_call_and_a_retry_replays_it(
    books: Books, db: Database
) -> None:
    alice, bob = books.customer("50.00"), books.customer("20.00")
    batch = [
        _spend(books, alice, "10.00", "a1"),
        _split(books, bob, "5.00", "b1"),
        _spend(books, alice, "2.50", "a2"),
    ]
    calls: Counter[bool] = Counter()

    def count(*args: Any) -> None:
        calls[bool(args[-1])] += 1  # executemany-like calls apart

    sqlalchemy_event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.transaction() as conn:
            ids = post_many(conn, batch, now=books.now)
    finally:
        sqlalchemy_event.remove(db.engine, "before_cursor_execute", count)
    assert len(set(ids)) == 3
    assert books.available(alice) == usd("37.50")
    assert books.available(bob) == usd("15.00")
    if db.engine.dialect.name == "postgresql":
        # The three function calls in one pipeline, beside the savepoint's two statements.
        assert calls[True] == 1, calls
        assert calls[False] <= 2, calls

    before = books.snapshot()
    with db.transaction() as conn:
        assert post_many(conn, batch, now=books.now) == ids
    assert books.snapshot() == before


def test_a_refusal_inside_a_batch_is_what_posting_one_by_one_gives(
    books: Books, db: Database
) -> None:
    alice, bob = books.customer("10.00"), books.customer("10.00")
    batch = [
        _spend(books, alice, "4.00", "ok-1"),
        _spend(books, bob, "30.00", "too-much"),
        _spend(books, alice, "1.00", "ok-2"),
    ]
    # The caller may keep the refusal (its transaction commits), as the API does: the entry
    # before it stands, the refusal is stored under its key, the entry after it never posted.
    with db.transaction() as conn, pytest.raises(InsufficientFunds):
        post_many(conn, batch, now=books.now)
    assert books.available(alice) == usd("6.00")
    assert books.available(bob) == usd("10.00")
    assert books.stored_outcome("too-much") == InsufficientFunds.code
    assert books.stored_outcome("ok-2") is None


def test_a_failing_entry_inside_a_batch_raises_what_posting_it_alone_raises(
    books: Books, db: Database
) -> None:
    """An entry the database refuses with an error (an account that does not exist): on
    PostgreSQL the pipeline fails, the batch goes back to its savepoint and is posted again one
    entry at a time, which raises `post`'s own error; the unit of work then rolls back."""
    alice = books.customer("10.00")
    nowhere = NewTransaction(
        [Leg(alice, usd("1.00")), Leg(10**12, -usd("1.00"))],
        kind=TransactionKind.USAGE,
        request=books.key("nowhere", "spend"),
    )
    unbalanced = NewTransaction(
        [Leg(alice, usd("1.00")), Leg(books.revenue, -usd("2.00"))],
        kind=TransactionKind.USAGE,
        request=None,
    )
    before = books.snapshot()
    with pytest.raises(AccountNotFound), db.transaction() as conn:
        post_many(conn, [_spend(books, alice, "1.00", "x"), nowhere], now=books.now)
    with pytest.raises(UnbalancedTransaction), db.transaction() as conn:
        post_many(conn, [_spend(books, alice, "1.00", "y"), unbalanced], now=books.now)
    assert books.snapshot() == before


def test_an_entry_out_of_range_inside_a_batch_leaves_the_ones_before_it_posted(
    books: Books, db: Database
) -> None:
    """An entry the journal refuses before any call (a line beyond `MAX_AMOUNT`): the batch is
    posted one by one, as `post` would, so what came before it stands if the caller keeps it."""
    alice = books.customer("10.00")
    first = Entry(
        lines=[Line(alice, posted=usd("1.00").amount), Line(books.revenue, posted=-1_000_000)],
        kind=TransactionKind.USAGE,
    )
    huge = Entry(
        lines=[Line(alice, posted=MAX_AMOUNT + 1), Line(books.revenue, posted=-(MAX_AMOUNT + 1))],
        kind=TransactionKind.USAGE,
    )
    with db.transaction() as conn, pytest.raises(SumOutOfRange):
        journal_for(conn).post_many(conn, [(first, None), (huge, None)], books.now)
    assert books.available(alice) == usd("9.00")
