"""Every running sum and balance stays within the range `Money` promises (issue 13, item 2).

An entry whose result would leave any touched account's debits, credits, pending debits,
pending credits or available balance beyond 2**256-1 minor units is refused whole, with
`amount_out_of_range`, and writes nothing, on both databases and through both journals. The
account stays readable and a retry is refused the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Connection

from kassa.ledger import holds
from kassa.ledger.journal import (
    PORTABLE_JOURNAL,
    Entry,
    Line,
    Posted,
    SumOutOfRange,
    journal_for,
)
from kassa.ledger.model import TransactionKind
from kassa.money import MAX_AMOUNT, USD, Money

if TYPE_CHECKING:
    from tests.ledger.conftest import Books

pytestmark = pytest.mark.usefixtures("db")


NOW = datetime(2026, 11, 20, 15, tzinfo=UTC)


def _post(conn: Connection, lines: list[Line], *, portable: bool) -> None:
    """Through the portable journal, or the database's own (PostgreSQL's stored function)."""
    journal = PORTABLE_JOURNAL if portable else journal_for(conn)
    entry = Entry(lines=lines, kind=TransactionKind.ADJUSTMENT)
    assert isinstance(journal.post(conn, entry, NOW, None), Posted)


def _refused(books: Books, lines: list[Line], *, portable: bool) -> None:
    """The entry is refused and nothing at all changed."""
    before = books.snapshot()
    with pytest.raises(SumOutOfRange) as refused, books.db.transaction() as conn:
        _post(conn, lines, portable=portable)
    assert refused.value.code == "amount_out_of_range"
    assert books.snapshot() == before


JOURNALS = pytest.mark.parametrize("portable", [True, False], ids=["portable", "native"])


@JOURNALS
def test_a_line_beyond_the_range_is_refused(books: Books, portable: bool) -> None:
    user = books.customer()
    _refused(
        books,
        [Line(books.adjustments, posted=MAX_AMOUNT + 1), Line(user, posted=-MAX_AMOUNT - 1)],
        portable=portable,
    )


@JOURNALS
def test_credits_that_would_pass_the_largest_sum_are_refused(books: Books, portable: bool) -> None:
    user = books.customer("1.00")
    # The customer's credits would reach MAX + 1: refused, though the line itself is in range.
    _refused(
        books,
        [Line(books.adjustments, posted=MAX_AMOUNT), Line(user, posted=-MAX_AMOUNT)],
        portable=portable,
    )
    assert books.available(user) == Money(1_000_000, USD)


@JOURNALS
def test_a_house_total_past_the_largest_sum_is_refused(books: Books, portable: bool) -> None:
    first, second = books.customer(), books.customer()
    with books.db.transaction() as conn:
        _post(
            conn,
            [Line(books.adjustments, posted=MAX_AMOUNT), Line(first, posted=-MAX_AMOUNT)],
            portable=portable,
        )
    # The second customer's own sums would be fine; the house adjustments' debits would not.
    _refused(
        books,
        [Line(books.adjustments, posted=1), Line(second, posted=-1)],
        portable=portable,
    )
    assert books.balance(books.adjustments).posted == Money(MAX_AMOUNT, USD)
    assert books.available(first) == Money(MAX_AMOUNT, USD)


@JOURNALS
def test_an_available_balance_below_the_range_is_refused(books: Books, portable: bool) -> None:
    # House revenue may go negative; posted -MAX plus 1 reserved from it would make its
    # available balance -(MAX + 1), which no Money can hold.
    user = books.customer()
    with books.db.transaction() as conn:
        _post(
            conn,
            [Line(books.revenue, posted=MAX_AMOUNT), Line(books.deposits, posted=-MAX_AMOUNT)],
            portable=portable,
        )
    _refused(
        books,
        [Line(books.revenue, pending_debits=1), Line(user, pending_credits=1)],
        portable=portable,
    )
    assert books.balance(books.revenue).available == Money(-MAX_AMOUNT, USD)


def test_a_hold_is_refused_when_a_pending_sum_would_pass_the_range(books: Books) -> None:
    first, second = books.customer(), books.customer()
    with books.db.transaction() as conn:
        for source, user in ((books.deposits, first), (books.adjustments, second)):
            _post(
                conn,
                [Line(source, posted=MAX_AMOUNT), Line(user, posted=-MAX_AMOUNT)],
                portable=False,
            )
    books.hold(first, "1.00")
    before = books.snapshot()
    # Revenue's pending credits would pass the range: refused, and the hold row is not
    # written either, nor the key claimed.
    with pytest.raises(SumOutOfRange), books.db.transaction() as conn:
        holds.create_hold(
            conn,
            debit_account_id=second,
            credit_account_id=books.revenue,
            amount=Money(MAX_AMOUNT, USD),
            now=books.now,
            request=books.key("big-hold", "hold"),
        )
    assert books.snapshot() == before
    assert books.stored_outcome("big-hold") is None
    assert books.balance(books.revenue).pending_incoming == Money(1_000_000, USD)
