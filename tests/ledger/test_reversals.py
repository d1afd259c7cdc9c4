"""Reversals (docs/domain.md §3, §4 reorgs): a correction is the mirror image of the original,
posted once. A reversal may take a customer below zero — a chain took the money back — and the
account is then frozen: nothing leaves it (no spending, no holds) until credits cover it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from kassa.db import Database
from kassa.ledger import transfers
from kassa.ledger.errors import (
    AccountFrozen,
    AlreadyReversed,
    IdempotencyKeyReused,
    InsufficientFunds,
    TransactionNotFound,
)
from kassa.ledger.model import TransactionKind
from kassa.money import USD, Money

if TYPE_CHECKING:
    from tests.ledger.conftest import Books


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD, allow_negative=True)


def test_a_reversal_posts_the_mirror_image_of_the_original(books: Books, db: Database) -> None:
    alice = books.customer("100.00")
    spend = books.spend(alice, "30.00")

    reversal = books.reverse(spend, reason="billing error on order 17")

    with db.transaction() as conn:
        original = transfers.get_transaction(conn, spend)
        mirror = transfers.get_transaction(conn, reversal)
    assert mirror.kind is TransactionKind.REVERSAL
    assert mirror.reverses_id == spend
    assert mirror.reason == "billing error on order 17"
    assert mirror.actor == "ops"
    assert [(p.account_id, p.amount) for p in mirror.postings] == [
        (p.account_id, -p.amount) for p in original.postings
    ]
    assert books.available(alice) == usd("100.00")
    assert books.posted(books.revenue) == usd("0")
    books.assert_books_balance()


def test_a_captured_hold_can_be_reversed(books: Books) -> None:
    alice = books.customer("100.00")
    captured = books.capture(books.hold(alice, "30.00").id, "20.00")
    assert captured.capture_transaction_id is not None

    books.reverse(captured.capture_transaction_id, reason="activation not delivered")

    assert books.available(alice) == usd("100.00")
    books.assert_books_balance()


def test_a_second_reversal_is_refused_as_already_reversed(books: Books) -> None:
    alice = books.customer("100.00")
    spend = books.spend(alice, "30.00")
    first = books.reverse(spend)
    before = books.snapshot()

    with pytest.raises(AlreadyReversed, match=str(first)):
        books.reverse(spend)

    assert books.snapshot() == before
    assert books.available(alice) == usd("100.00")


def test_a_reversal_retried_with_its_key_returns_the_same_reversal(books: Books) -> None:
    alice = books.customer("100.00")
    spend = books.spend(alice, "30.00")

    first = books.reverse(spend, key="reorg-5")
    after_first = books.snapshot()
    again = books.reverse(spend, key="reorg-5")

    assert again == first
    assert books.snapshot() == after_first


def test_a_second_reversal_under_a_new_key_is_refused_and_the_refusal_replayed(
    books: Books,
) -> None:
    alice = books.customer("100.00")
    spend = books.spend(alice, "30.00")
    books.reverse(spend, key="reorg-5")

    for _ in range(2):
        with pytest.raises(AlreadyReversed):
            books.reverse(spend, key="reorg-6")

    assert books.stored_outcome("reorg-6") == AlreadyReversed.code


def test_a_reversal_key_reused_for_another_transaction_is_refused(books: Books) -> None:
    alice = books.customer("100.00")
    first_spend = books.spend(alice, "30.00")
    second_spend = books.spend(alice, "10.00")
    books.reverse(first_spend, key="reorg-5")
    before = books.snapshot()

    with pytest.raises(IdempotencyKeyReused):
        books.reverse(second_spend, key="reorg-5")

    assert books.snapshot() == before


def test_reversing_an_unknown_transaction_is_refused_as_not_found(books: Books) -> None:
    with pytest.raises(TransactionNotFound):
        books.reverse(uuid.UUID(int=7))


def test_a_reversal_that_takes_a_customer_below_zero_freezes_the_account(books: Books) -> None:
    # Alice topped up $100 and spent $70; the top-up's block was reorganised away.
    alice = books.customer()
    top_up = books.deposit(alice, "100.00")
    books.spend(alice, "70.00")

    books.reverse(top_up, reason="reorg: block 840 000 left the chain")

    balance = books.balance(alice)
    assert balance.posted == usd("-70.00")
    assert balance.available == usd("-70.00")
    assert balance.frozen
    books.assert_books_balance()


def test_a_reversal_of_money_reserved_by_a_hold_freezes_the_account(books: Books) -> None:
    alice = books.customer()
    top_up = books.deposit(alice, "100.00")
    hold = books.hold(alice, "60.00")

    books.reverse(top_up)

    assert books.balance(alice).available == usd("-60.00")
    assert books.balance(alice).frozen
    books.void(hold.id)
    assert books.available(alice) == usd("0")
    assert not books.balance(alice).frozen


def frozen_customer(books: Books) -> int:
    """A customer $70 below zero after a chargeback."""
    alice = books.customer()
    top_up = books.deposit(alice, "100.00")
    books.spend(alice, "70.00")
    books.reverse(top_up)
    assert books.balance(alice).frozen
    return alice


def test_a_frozen_account_cannot_spend(books: Books) -> None:
    alice = frozen_customer(books)
    before = books.snapshot()

    with pytest.raises(AccountFrozen, match="frozen"):
        books.spend(alice, "0.000001")

    assert books.snapshot() == before


def test_a_frozen_account_cannot_place_a_hold(books: Books) -> None:
    alice = frozen_customer(books)
    before = books.snapshot()

    with pytest.raises(AccountFrozen):
        books.hold(alice, "1.00")

    assert books.snapshot() == before


def test_a_frozen_account_cannot_pay_another_customer(books: Books) -> None:
    alice = frozen_customer(books)
    bob = books.customer()

    with pytest.raises(AccountFrozen), books.db.transaction() as conn:
        transfers.transfer(
            conn,
            debit_account_id=alice,
            credit_account_id=bob,
            amount=usd("1.00"),
            now=books.now,
            request=None,
        )

    assert books.available(bob) == usd("0")


def test_a_frozen_account_receives_credits_and_unfreezes_once_covered(books: Books) -> None:
    alice = frozen_customer(books)

    books.deposit(alice, "50.00")
    assert books.available(alice) == usd("-20.00")
    assert books.balance(alice).frozen
    with pytest.raises(AccountFrozen):
        books.spend(alice, "0.01")

    books.deposit(alice, "20.00")
    assert books.available(alice) == usd("0")
    assert not books.balance(alice).frozen
    with pytest.raises(InsufficientFunds):
        books.spend(alice, "0.01")

    books.deposit(alice, "10.00")
    books.spend(alice, "10.00")
    assert books.available(alice) == usd("0")
    books.assert_books_balance()


def test_a_reversal_of_a_payment_between_customers_freezes_the_one_who_spent_it(
    books: Books,
) -> None:
    alice = books.customer("50.00")
    bob = books.customer()
    with books.db.transaction() as conn:
        payment = transfers.transfer(
            conn,
            debit_account_id=alice,
            credit_account_id=bob,
            amount=usd("30.00"),
            now=books.now,
            request=None,
        )
    books.spend(bob, "30.00")

    books.reverse(payment)

    assert books.available(alice) == usd("50.00")
    assert books.available(bob) == usd("-30.00")
    assert books.balance(bob).frozen
    assert not books.balance(alice).frozen
