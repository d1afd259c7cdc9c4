"""Operator adjustments (docs/domain.md §3): a manual credit or debit of a customer's balance
against the house adjustments account, with the reason and the operator recorded on the journal
transaction. A debit is refused like any spend when the balance cannot cover it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from kassa.db import Database
from kassa.errors import InvalidRequest
from kassa.ledger import transfers
from kassa.ledger.errors import (
    AccountFrozen,
    IdempotencyKeyReused,
    InsufficientFunds,
    UnbalancedTransaction,
)
from kassa.ledger.model import TransactionKind
from kassa.money import BTC, USD, Money

if TYPE_CHECKING:
    from tests.ledger.conftest import Books


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD, allow_negative=True)


def adjust(
    books: Books,
    account_id: int,
    amount: Money,
    direction: str,
    *,
    reason: str = "outage on 2026-11-19: 40 minutes of failed calls",
    actor: str = "ops:maria",
    key: str | None = None,
) -> uuid.UUID:
    request = (
        books.key(key, "adjust", account=account_id, amount=str(amount), direction=direction)
        if key
        else None
    )
    with books.db.transaction() as conn:
        return transfers.adjust(
            conn,
            account_id=account_id,
            amount=amount,
            direction=direction,
            reason=reason,
            actor=actor,
            now=books.now,
            request=request,
        )


def test_an_operator_credit_raises_the_balance_and_records_reason_and_actor(
    books: Books, db: Database
) -> None:
    alice = books.customer("10.00")

    transaction_id = adjust(books, alice, usd("5.25"), "credit")

    assert books.available(alice) == usd("15.25")
    # A credit to a customer is the house's expense (debit-normal adjustments account).
    assert books.posted(books.adjustments) == usd("5.25")
    with db.transaction() as conn:
        transaction = transfers.get_transaction(conn, transaction_id)
    assert transaction.kind is TransactionKind.ADJUSTMENT
    assert transaction.reason == "outage on 2026-11-19: 40 minutes of failed calls"
    assert transaction.actor == "ops:maria"
    assert transaction.memo is not None
    assert "credit" in transaction.memo
    assert [(p.account_id, p.amount) for p in transaction.postings] == [
        (alice, usd("-5.25")),
        (books.adjustments, usd("5.25")),
    ]
    books.assert_books_balance()


def test_an_operator_debit_lowers_the_balance(books: Books, db: Database) -> None:
    alice = books.customer("10.00")

    transaction_id = adjust(books, alice, usd("4.00"), "debit", reason="duplicate top-up")

    assert books.available(alice) == usd("6.00")
    assert books.posted(books.adjustments) == usd("-4.00")
    with db.transaction() as conn:
        transaction = transfers.get_transaction(conn, transaction_id)
    assert transaction.reason == "duplicate top-up"
    assert transaction.actor == "ops:maria"
    books.assert_books_balance()


def test_an_operator_debit_beyond_the_balance_is_refused_and_nothing_is_written(
    books: Books,
) -> None:
    alice = books.customer("10.00")
    before = books.snapshot()

    with pytest.raises(InsufficientFunds):
        adjust(books, alice, usd("10.000001"), "debit")

    assert books.snapshot() == before


def test_an_operator_debit_cannot_take_money_reserved_by_a_hold(books: Books) -> None:
    alice = books.customer("10.00")
    books.hold(alice, "8.00")

    with pytest.raises(InsufficientFunds):
        adjust(books, alice, usd("3.00"), "debit")

    assert books.available(alice) == usd("2.00")


def test_an_operator_debit_of_a_frozen_account_is_refused(books: Books) -> None:
    alice = books.customer()
    top_up = books.deposit(alice, "10.00")
    books.spend(alice, "10.00")
    books.reverse(top_up)

    with pytest.raises(AccountFrozen):
        adjust(books, alice, usd("1.00"), "debit")

    adjust(books, alice, usd("10.00"), "credit", reason="goodwill: cover the chargeback")
    assert books.available(alice) == usd("0")
    assert not books.balance(alice).frozen


def test_an_adjustment_without_a_reason_is_refused(books: Books) -> None:
    alice = books.customer("10.00")
    before = books.snapshot()

    for reason in ("", "   ", "\n\t"):
        with pytest.raises(InvalidRequest, match="reason"):
            adjust(books, alice, usd("1.00"), "credit", reason=reason)

    assert books.snapshot() == before


def test_an_adjustment_without_an_operator_is_refused(books: Books) -> None:
    alice = books.customer("10.00")
    before = books.snapshot()

    with pytest.raises(InvalidRequest):
        adjust(books, alice, usd("1.00"), "credit", actor=" ")

    assert books.snapshot() == before


def test_an_adjustment_is_a_credit_or_a_debit(books: Books) -> None:
    alice = books.customer("10.00")

    with pytest.raises(InvalidRequest):
        adjust(books, alice, usd("1.00"), "refund")

    assert books.available(alice) == usd("10.00")


def test_an_adjustment_of_zero_or_a_negative_amount_is_refused(books: Books) -> None:
    alice = books.customer("10.00")
    before = books.snapshot()

    for dollars in ("0", "-1.00"):
        with pytest.raises(UnbalancedTransaction):
            adjust(books, alice, usd(dollars), "credit")

    assert books.snapshot() == before


def test_an_adjustment_in_another_asset_than_the_account_is_refused(books: Books) -> None:
    alice = books.customer("10.00")
    before = books.snapshot()

    with pytest.raises(UnbalancedTransaction):
        adjust(books, alice, Money(500_000, BTC), "credit")

    assert books.snapshot() == before


def test_an_adjustment_retried_with_its_key_applies_once(books: Books) -> None:
    alice = books.customer("10.00")

    first = adjust(books, alice, usd("5.00"), "credit", key="ticket-4411")
    again = adjust(books, alice, usd("5.00"), "credit", key="ticket-4411")

    assert again == first
    assert books.available(alice) == usd("15.00")
    with pytest.raises(IdempotencyKeyReused):
        adjust(books, alice, usd("5.00"), "debit", key="ticket-4411")
    assert books.available(alice) == usd("15.00")
