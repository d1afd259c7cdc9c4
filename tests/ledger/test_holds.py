"""Holds — two-phase transfers (docs/domain.md §3, §6 activations): a hold reserves funds at once
(available drops, posted does not), and resolves exactly once by capture (full or partial, the
rest returns), void, or expiry. A capture at or after the expiry time is refused and the hold
ends expired with the funds back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from kassa.db import Database
from kassa.ledger import holds, transfers
from kassa.ledger.errors import (
    CaptureExceedsHold,
    HoldAlreadyResolved,
    HoldExpired,
    HoldNotFound,
    InsufficientFunds,
    UnbalancedTransaction,
)
from kassa.ledger.model import HoldStatus, TransactionKind
from kassa.money import BTC, USD, Money

if TYPE_CHECKING:
    from tests.ledger.conftest import Books

ACTIVATION_WINDOW = timedelta(minutes=20)


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD, allow_negative=True)


def test_a_hold_reserves_funds_and_lowers_available_at_once(books: Books) -> None:
    alice = books.customer("100.00")

    hold = books.hold(alice, "30.00", expires_at=books.now + ACTIVATION_WINDOW)

    assert hold.status is HoldStatus.PENDING
    balance = books.balance(alice)
    assert balance.posted == usd("100.00")
    assert balance.pending_outgoing == usd("30.00")
    assert balance.available == usd("70.00")
    revenue = books.balance(books.revenue)
    assert revenue.posted == usd("0")
    assert revenue.pending_incoming == usd("30.00")
    # Reserving is not posting: no journal transaction yet.
    assert books.snapshot().transactions == 1


def test_a_full_capture_posts_the_held_amount(books: Books, db: Database) -> None:
    alice = books.customer("100.00")
    hold = books.hold(alice, "30.00")

    captured = books.capture(hold.id)

    assert captured.status is HoldStatus.CAPTURED
    assert captured.captured_amount == usd("30.00")
    assert captured.resolved_at == books.now
    assert books.balance(alice).posted == usd("70.00")
    assert books.balance(alice).pending_outgoing == usd("0")
    assert books.available(alice) == usd("70.00")
    assert books.balance(books.revenue).posted == usd("30.00")
    assert books.balance(books.revenue).pending_incoming == usd("0")
    assert captured.capture_transaction_id is not None
    with db.transaction() as conn:
        transaction = transfers.get_transaction(conn, captured.capture_transaction_id)
    assert transaction.hold_id == hold.id
    assert transaction.kind is TransactionKind.CAPTURE
    books.assert_books_balance()


def test_a_partial_capture_posts_part_and_returns_the_remainder(books: Books) -> None:
    alice = books.customer("100.00")
    hold = books.hold(alice, "30.00")

    captured = books.capture(hold.id, "12.345678")

    assert captured.status is HoldStatus.CAPTURED
    assert captured.captured_amount == usd("12.345678")
    assert captured.amount == usd("30.00")
    balance = books.balance(alice)
    assert balance.posted == usd("87.654322")
    assert balance.pending_outgoing == usd("0")
    assert balance.available == usd("87.654322")
    assert books.posted(books.revenue) == usd("12.345678")
    books.assert_books_balance()


def test_a_void_returns_the_funds_and_posts_nothing(books: Books) -> None:
    alice = books.customer("100.00")
    hold = books.hold(alice, "30.00")
    before = books.snapshot()

    voided = books.void(hold.id)

    assert voided.status is HoldStatus.VOIDED
    assert voided.captured_amount is None
    assert books.available(alice) == usd("100.00")
    assert books.balance(books.revenue).pending_incoming == usd("0")
    assert books.snapshot().transactions == before.transactions


def test_the_expiry_sweep_returns_funds_once_the_hold_is_due(books: Books) -> None:
    alice = books.customer("100.00")
    hold = books.hold(alice, "30.00", expires_at=books.now + ACTIVATION_WINDOW)
    open_ended = books.hold(alice, "5.00")

    books.clock.advance(ACTIVATION_WINDOW - timedelta(seconds=1))
    assert books.expire_due_holds() == []
    assert books.available(alice) == usd("65.00")

    books.clock.advance(timedelta(seconds=1))  # exactly at expires_at: due
    assert books.expire_due_holds() == [hold.id]

    expired = books.get_hold(hold.id)
    assert expired.status is HoldStatus.EXPIRED
    assert expired.resolved_at == books.now
    assert books.available(alice) == usd("95.00")
    assert books.get_hold(open_ended.id).status is HoldStatus.PENDING
    assert books.expire_due_holds() == []
    assert books.available(alice) == usd("95.00")


def test_the_expiry_sweep_expires_many_due_holds_in_expiry_order(books: Books) -> None:
    alice = books.customer("100.00")
    due = [
        books.hold(alice, "1.00", expires_at=books.now + timedelta(minutes=m)).id for m in (3, 1, 2)
    ]

    books.clock.advance(timedelta(minutes=5))

    assert books.expire_due_holds() == [due[1], due[2], due[0]]
    assert books.available(alice) == usd("100.00")


@pytest.mark.parametrize("first", ["capture", "partial capture", "void", "expire"])
def test_a_hold_resolves_exactly_once(books: Books, first: str) -> None:
    alice = books.customer("100.00")
    hold = books.hold(alice, "30.00", expires_at=books.now + ACTIVATION_WINDOW)
    if first == "capture":
        books.capture(hold.id)
    elif first == "partial capture":
        books.capture(hold.id, "10.00")
    elif first == "void":
        books.void(hold.id)
    else:
        books.clock.advance(ACTIVATION_WINDOW)
        assert books.expire_due_holds() == [hold.id]
    resolved = books.get_hold(hold.id)
    before = books.snapshot()
    # An expired hold says so, whoever expired it; the others are simply resolved.
    refusal = HoldExpired if first == "expire" else HoldAlreadyResolved

    with pytest.raises(refusal):
        books.capture(hold.id)
    with pytest.raises(refusal):
        books.capture(hold.id, "1.00")
    with pytest.raises(refusal):
        books.void(hold.id)
    assert books.expire_due_holds() == []

    assert books.get_hold(hold.id) == resolved
    assert books.snapshot() == before


def test_capture_at_or_after_expiry_is_refused_and_funds_return(books: Books, db: Database) -> None:
    alice = books.customer("100.00")
    for late in (timedelta(0), timedelta(microseconds=1), timedelta(days=3)):
        hold = books.hold(alice, "30.00", expires_at=books.now + ACTIVATION_WINDOW)
        books.clock.advance(ACTIVATION_WINDOW + late)

        # The refusal is recorded: the unit of work commits the hold's expiry with it.
        with pytest.raises(HoldExpired), db.transaction() as conn:
            holds.capture_hold(conn, hold.id, now=books.now, request=None)

        expired = books.get_hold(hold.id)
        assert expired.status is HoldStatus.EXPIRED, late
        assert expired.captured_amount is None
        assert books.available(alice) == usd("100.00")
        assert books.balance(books.revenue).pending_incoming == usd("0")
        assert books.expire_due_holds() == []
        with pytest.raises(HoldExpired):
            books.capture(hold.id)
    books.assert_books_balance()


def test_capture_just_before_expiry_succeeds(books: Books) -> None:
    alice = books.customer("100.00")
    hold = books.hold(alice, "30.00", expires_at=books.now + ACTIVATION_WINDOW)
    books.clock.advance(ACTIVATION_WINDOW - timedelta(microseconds=1))

    assert books.capture(hold.id).status is HoldStatus.CAPTURED
    assert books.available(alice) == usd("70.00")


def test_a_hold_exceeding_available_is_refused_and_nothing_is_written(books: Books) -> None:
    alice = books.customer("100.00")
    books.hold(alice, "60.00")
    before = books.snapshot()

    with pytest.raises(InsufficientFunds):
        books.hold(alice, "40.000001")

    assert books.snapshot() == before
    books.hold(alice, "40.00")
    assert books.available(alice) == usd("0")


def test_capturing_more_than_the_hold_is_refused_and_the_hold_stays_pending(
    books: Books,
) -> None:
    alice = books.customer("100.00")
    hold = books.hold(alice, "30.00")
    before = books.snapshot()

    with pytest.raises(CaptureExceedsHold):
        books.capture(hold.id, "30.000001")

    assert books.get_hold(hold.id).status is HoldStatus.PENDING
    assert books.snapshot() == before
    assert books.capture(hold.id, "30.00").captured_amount == usd("30.00")


def test_a_capture_must_take_a_positive_amount_of_the_holds_asset(
    books: Books, db: Database
) -> None:
    alice = books.customer("100.00")
    hold = books.hold(alice, "30.00")

    for amount in (Money(0, USD), Money(-1, USD), Money(1, BTC)):
        with pytest.raises(CaptureExceedsHold), db.transaction() as conn:
            holds.capture_hold(conn, hold.id, now=books.now, request=None, amount=amount)

    assert books.get_hold(hold.id).status is HoldStatus.PENDING


def test_a_hold_of_zero_or_a_negative_amount_is_refused(books: Books) -> None:
    alice = books.customer("100.00")
    before = books.snapshot()

    for dollars in ("0", "-5.00"):
        with pytest.raises(UnbalancedTransaction):
            books.hold(alice, dollars)

    assert books.snapshot() == before


def test_a_hold_that_expires_before_it_is_placed_is_refused(books: Books) -> None:
    alice = books.customer("100.00")
    before = books.snapshot()

    with pytest.raises(UnbalancedTransaction):
        books.hold(alice, "5.00", expires_at=books.now)

    assert books.snapshot() == before


def test_a_hold_between_accounts_of_another_asset_is_refused(books: Books, db: Database) -> None:
    alice = books.customer("100.00")
    before = books.snapshot()

    with pytest.raises(UnbalancedTransaction), db.transaction() as conn:
        holds.create_hold(
            conn,
            debit_account_id=alice,
            credit_account_id=books.revenue,
            amount=Money(5_000, BTC),
            now=books.now,
            request=None,
        )

    assert books.snapshot() == before


def test_resolving_an_unknown_hold_is_refused_as_not_found(books: Books) -> None:
    unknown = uuid.UUID(int=42)

    with pytest.raises(HoldNotFound):
        books.capture(unknown)
    with pytest.raises(HoldNotFound):
        books.void(unknown)


def test_a_hold_placed_twice_with_one_key_reserves_once(books: Books) -> None:
    alice = books.customer("100.00")

    first = books.hold(alice, "30.00", key="activation-7")
    again = books.hold(alice, "30.00", key="activation-7")

    assert again.id == first.id
    assert books.available(alice) == usd("70.00")
    assert books.snapshot().holds == 1


def test_a_capture_retried_with_its_key_returns_the_same_hold_and_posts_once(
    books: Books,
) -> None:
    alice = books.customer("100.00")
    hold = books.hold(alice, "30.00")

    first = books.capture(hold.id, "10.00", key="fulfil-7")
    after_first = books.snapshot()
    again = books.capture(hold.id, "10.00", key="fulfil-7")

    assert again == first
    assert books.snapshot() == after_first
    assert books.available(alice) == usd("90.00")


def test_a_refused_capture_is_replayed_under_its_key(books: Books) -> None:
    alice = books.customer("100.00")
    hold = books.hold(alice, "30.00")
    books.void(hold.id)

    with pytest.raises(HoldAlreadyResolved):
        books.capture(hold.id, key="fulfil-8")
    with pytest.raises(HoldAlreadyResolved):
        books.capture(hold.id, key="fulfil-8")

    assert books.stored_outcome("fulfil-8") == HoldAlreadyResolved.code


def test_a_hold_retried_with_its_key_after_it_expired_returns_the_stored_hold(
    books: Books,
) -> None:
    # A client whose "place hold" response was lost retries with the same Idempotency-Key;
    # by then the hold's expiry has passed. Same key + same request → the stored result.
    alice = books.customer("100.00")
    expires_at = books.now + ACTIVATION_WINDOW
    first = books.hold(alice, "30.00", expires_at=expires_at, key="activation-9")
    books.clock.advance(ACTIVATION_WINDOW + timedelta(minutes=1))
    before = books.snapshot()

    again = books.hold(alice, "30.00", expires_at=expires_at, key="activation-9")

    assert again.id == first.id
    assert books.snapshot() == before
