"""Idempotency (docs/domain.md §3): same key + same request → the stored result, refusals
included, even after the world changed; same key + different request → a clear error and
nothing changes; a refusal is stored in the same unit of work and survives it; a unit of work
that fails leaves no record, so the key can be retried."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from kassa.db import Database
from kassa.ledger import transfers
from kassa.ledger.errors import (
    IdempotencyKeyReused,
    InsufficientFunds,
    InvalidIdempotencyKey,
)
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.money import USD, Money

if TYPE_CHECKING:
    from tests.ledger.conftest import Books


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD, allow_negative=True)


def test_the_same_key_and_request_return_the_same_transaction_and_move_money_once(
    books: Books,
) -> None:
    alice = books.customer("100.00")

    first = books.spend(alice, "3.00", key="usage-2026-11-20-0001")
    after_first = books.snapshot()
    retries = [books.spend(alice, "3.00", key="usage-2026-11-20-0001") for _ in range(3)]

    assert retries == [first] * 3
    assert books.snapshot() == after_first
    assert books.available(alice) == usd("97.00")


def test_a_repeat_inside_one_unit_of_work_returns_the_first_result(
    books: Books, db: Database
) -> None:
    alice = books.customer("100.00")
    request = books.key("twice", "spend", amount="3.00")

    with db.transaction() as conn:
        ids = [
            transfers.transfer(
                conn,
                debit_account_id=alice,
                credit_account_id=books.revenue,
                amount=usd("3.00"),
                now=books.now,
                request=request,
            )
            for _ in range(2)
        ]

    assert ids[0] == ids[1]
    assert books.available(alice) == usd("97.00")


@pytest.mark.parametrize(
    ("operation", "dollars"),
    [("spend", "4.00"), ("deposit", "3.00")],
    ids=["another amount", "another operation"],
)
def test_the_same_key_with_a_different_request_is_refused_and_nothing_changes(
    books: Books, operation: str, dollars: str
) -> None:
    alice = books.customer("100.00")
    books.spend(alice, "3.00", key="order-17")
    before = books.snapshot()

    with pytest.raises(IdempotencyKeyReused, match="order-17"):
        if operation == "spend":
            books.spend(alice, dollars, key="order-17")
        else:
            books.deposit(alice, dollars, key="order-17")

    assert books.snapshot() == before
    assert books.stored_outcome("order-17") == "ok"


def test_a_refusal_is_stored_under_its_key_and_replayed_after_a_top_up(
    books: Books, db: Database
) -> None:
    alice = books.customer("10.00")
    request = books.key("withdraw-9", "spend", amount="30.00")

    def spend_thirty() -> None:
        with db.transaction() as conn:
            transfers.transfer(
                conn,
                debit_account_id=alice,
                credit_account_id=books.revenue,
                amount=usd("30.00"),
                now=books.now,
                request=request,
            )

    with pytest.raises(InsufficientFunds) as first:
        spend_thirty()
    # The refusal survived its unit of work.
    assert books.stored_outcome("withdraw-9") == InsufficientFunds.code

    books.deposit(alice, "100.00")
    before_retry = books.snapshot()
    with pytest.raises(InsufficientFunds) as retried:
        spend_thirty()

    assert retried.value.detail == first.value.detail
    assert books.snapshot() == before_retry
    assert books.available(alice) == usd("110.00")
    # A new key is a new request, judged on today's balance.
    books.spend(alice, "30.00", key="withdraw-10")
    assert books.available(alice) == usd("80.00")


def test_a_unit_of_work_that_fails_after_posting_leaves_no_key_and_no_money_moved(
    books: Books, db: Database
) -> None:
    alice = books.customer("100.00")
    before = books.snapshot()

    with pytest.raises(ConnectionError), db.transaction() as conn:
        transfers.transfer(
            conn,
            debit_account_id=alice,
            credit_account_id=books.revenue,
            amount=usd("3.00"),
            now=books.now,
            request=books.key("usage-5", "spend", account=alice, amount="3.00"),
        )
        raise ConnectionError("the worker lost its connection before committing")

    assert books.snapshot() == before
    assert books.stored_outcome("usage-5") is None
    # The retry is a first attempt.
    books.spend(alice, "3.00", key="usage-5")
    assert books.available(alice) == usd("97.00")


def test_keys_are_scoped_per_client(books: Books, db: Database) -> None:
    alice = books.customer("100.00")

    def spend(scope: str) -> None:
        with db.transaction() as conn:
            transfers.transfer(
                conn,
                debit_account_id=alice,
                credit_account_id=books.revenue,
                amount=usd("3.00"),
                now=books.now,
                request=Request.of(IdempotencyKey(scope, "1"), "spend", {"amount": "3.00"}),
            )

    spend("api-key-a")
    spend("api-key-b")
    spend("api-key-a")

    assert books.available(alice) == usd("94.00")


@pytest.mark.parametrize(
    "key",
    ["", "k" * 256, "has space", "tab\there", "ключ", "café", "new\nline", "\x00"],
    ids=["empty", "256 chars", "space", "tab", "cyrillic", "accent", "newline", "nul"],
)
def test_an_invalid_idempotency_key_is_refused(key: str) -> None:
    with pytest.raises(InvalidIdempotencyKey):
        IdempotencyKey("test-client", key)


def test_printable_ascii_keys_up_to_255_characters_are_accepted_and_stored(
    books: Books,
) -> None:
    alice = books.customer("100.00")
    keys = [
        "k" * 255,
        "x",
        "0b9c6f4e-5f3a-4bd4-9e58-0f9b1f7d0c21",
        "!~#$%&'()*+,-./:;<=>?@[]^_`{|}",
    ]

    for key in keys:
        first = books.spend(alice, "1.00", key=key)
        assert books.spend(alice, "1.00", key=key) == first, key
        assert books.stored_outcome(key) == "ok"

    assert books.available(alice) == usd("96.00")


@pytest.mark.parametrize("scope", ["", "s" * 101])
def test_an_invalid_scope_is_refused(scope: str) -> None:
    with pytest.raises(InvalidIdempotencyKey):
        IdempotencyKey(scope, "key-1")
