"""Two-line entries on PostgreSQL go through `kassa_post_pair` (migration 0020), every other
entry through `kassa_post_entry`. For any two-line entry both must answer the same and leave the
same rows: same results, same refusals (the first offending account in id order, its balance
before and after), same errors, same idempotency records, same postings in line order, same
running sums. Each case below runs once through each function, in a transaction that is rolled
back, and the two runs are compared.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DBAPIError

from kassa.clock import ManualClock
from kassa.db import driver
from kassa.db.migrate import current_revision, downgrade, upgrade
from kassa.ledger.accounts import open_account
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.journal import (
    _POST_ENTRY_SQL,
    _POST_PAIR_SQL,
    Entry,
    Line,
    PostgresJournal,
    _pair_params,
)
from kassa.ledger.model import AccountKind, NormalSide, TransactionKind
from kassa.ledger.tables import idempotency_record, ledger_account, ledger_posting
from kassa.ledger.tables import ledger_transaction as journal_transaction
from kassa.money import BTC, MAX_AMOUNT, USD, Money

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory
    from tests.ledger.conftest import Books

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MISSING = 10**12

_POST_ENTRY_ALONE_SQL = _POST_ENTRY_SQL.replace(
    "kassa_post_entry(", "kassa_post_entry_alone("
).replace(
    ",\n           refused_account_code, refused_asset, available_before, available_after", ""
)


@dataclass(frozen=True, slots=True)
class Call:
    """One entry of a case: account ids by role, the first line's signed amount."""

    first: str
    second: str
    amount: int
    key: str | None = None
    fingerprint: str = "request-1"
    force: bool = False
    alone: bool = False
    first_asset: str | None = "USD"
    second_asset: str | None = "USD"
    transaction_id: uuid.UUID = field(default_factory=uuid.uuid4)


def _entry(call: Call, ids: dict[str, int]) -> tuple[Entry, Request | None]:
    entry = Entry(
        lines=[
            Line(ids[call.first], posted=call.amount, asset=call.first_asset),
            Line(ids[call.second], posted=-call.amount, asset=call.second_asset),
        ],
        kind=TransactionKind.TRANSFER,
        memo="a memo",
        actor="an actor",
        force=call.force,
        transaction_id=call.transaction_id,
    )
    request = None
    if call.key is not None:
        request = Request(IdempotencyKey("pair", call.key), "transfer", call.fingerprint)
    return entry, request


def _through_pair(conn: Connection, call: Call, ids: dict[str, int]) -> Any:
    entry, request = _entry(call, ids)
    params = _pair_params(entry, NOW, request, alone=call.alone)
    assert params is not None
    (row,) = driver.rows(conn, _POST_PAIR_SQL, params)
    return row[:5] if call.alone else row


def _through_general(conn: Connection, call: Call, ids: dict[str, int]) -> Any:
    entry, request = _entry(call, ids)
    params = PostgresJournal._params(entry, NOW, request)
    sql = _POST_ENTRY_ALONE_SQL if call.alone else _POST_ENTRY_SQL
    (row,) = driver.rows(conn, sql, params)
    return tuple(row)


def _run(
    conn: Connection, calls: list[Call], ids: dict[str, int], post: Callable[..., Any]
) -> list[Any]:
    """Each call's answer (or its error's SQLSTATE and first line), then every row it left."""
    answers: list[Any] = []
    for call in calls:
        savepoint = conn.begin_nested()
        try:
            answers.append(post(conn, call, ids))
            savepoint.commit()
        except DBAPIError as failed:
            savepoint.rollback()
            orig: Any = failed.orig
            answers.append(("error", orig.sqlstate, str(orig).split("\n", 1)[0]))
    answers.append(
        conn.execute(
            select(
                ledger_account.c.id,
                ledger_account.c.debits_posted,
                ledger_account.c.credits_posted,
                ledger_account.c.debits_pending,
                ledger_account.c.credits_pending,
            ).order_by(ledger_account.c.id)
        ).all()
    )
    answers.append(
        conn.execute(
            select(
                ledger_posting.c.transaction_id,
                ledger_posting.c.account_id,
                ledger_posting.c.asset,
                ledger_posting.c.amount,
            ).order_by(ledger_posting.c.id)
        ).all()
    )
    answers.append(
        conn.execute(select(journal_transaction).order_by(journal_transaction.c.id)).all()
    )
    answers.append(
        conn.execute(
            select(
                idempotency_record.c.scope,
                idempotency_record.c.key,
                idempotency_record.c.operation,
                idempotency_record.c.fingerprint,
                idempotency_record.c.outcome,
                idempotency_record.c.resource_id,
                idempotency_record.c.created_at,
            ).order_by(idempotency_record.c.key)
        ).all()
    )
    return answers


def _both(books: Books, calls: list[Call]) -> tuple[list[Any], list[Any]]:
    ids = _accounts(books)
    results = []
    for post in (_through_pair, _through_general):
        with books.db.engine.connect() as conn:
            outer = conn.begin()
            try:
                results.append(_run(conn, calls, ids, post))
            finally:
                outer.rollback()
    return results[0], results[1]


def _accounts(books: Books) -> dict[str, int]:
    alice = books.customer("10.00")
    bob = books.customer("0.00")
    with books.db.transaction() as conn:
        coins = open_account(
            conn,
            code="clearing:coins:BTC",
            asset_=BTC,
            normal_side=NormalSide.DEBIT,
            kind=AccountKind.CLEARING,
            allow_negative=True,
            now=books.now,
        ).id
    return {
        "alice": alice,
        "bob": bob,
        "revenue": books.revenue,
        "deposits": books.deposits,
        "coins": coins,
        "missing": MISSING,
    }


CASES = {
    "a spend, a replay and a reused key": [
        Call("alice", "revenue", 3_000_000, key="k"),
        Call("alice", "revenue", 3_000_000, key="k"),
        Call("alice", "revenue", 4_000_000, key="k", fingerprint="request-2"),
    ],
    "the first line credited, a debit-normal account debited": [
        Call("bob", "deposits", -2_500_000, key="top-up"),
        Call("deposits", "alice", 1, key="top-up-2"),
    ],
    "insufficient funds, stored under the key and replayed": [
        Call("bob", "revenue", 1, key="broke"),
        Call("bob", "revenue", 1, key="broke"),
        Call("alice", "bob", 11_000_000),
    ],
    "forced below zero, then frozen": [
        Call("alice", "revenue", 15_000_000, force=True),
        Call("alice", "revenue", 1, key="frozen"),
        Call("revenue", "alice", 1_000_000),
    ],
    "refused alone, replayed alone": [
        Call("bob", "revenue", 5, key="alone", alone=True),
        Call("alice", "revenue", 5, key="alone-ok", alone=True),
        Call("alice", "revenue", 5, key="alone-ok", alone=True),
    ],
    "a missing account, another asset, two assets": [
        Call("alice", "missing", 1, key="missing"),
        Call("missing", "alice", 1),
        Call("alice", "revenue", 1, first_asset="BTC"),
        Call("alice", "revenue", 1, second_asset="BTC"),
        Call("coins", "alice", 1, first_asset=None, second_asset=None),
        Call("alice", "revenue", 1, first_asset=None, second_asset=None),
    ],
    "sums up to and beyond the range": [
        Call("deposits", "revenue", MAX_AMOUNT - 10_000_000),
        Call("deposits", "revenue", 1),
        Call("revenue", "deposits", MAX_AMOUNT),
        Call("bob", "deposits", -MAX_AMOUNT),
    ],
}


@pytest.mark.parametrize("case", CASES)
def test_a_two_line_entry_gets_the_same_answer_and_rows_from_either_function(
    pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock, case: str
) -> None:
    books = books_class(pg_databases.new(), clock)
    through_pair, through_general = _both(books, CASES[case])

    assert through_pair == through_general
    # The case did something: at least one call was answered without an error.
    assert any(answer[0] != "error" for answer in through_pair[: len(CASES[case])])


def test_only_two_opposite_lines_on_two_accounts_without_pending_sums_take_the_pair_path() -> None:
    def entry(*lines: Line) -> Entry:
        return Entry(lines=lines, kind=TransactionKind.TRANSFER)

    assert _pair_params(entry(Line(1, 5), Line(2, -5)), NOW, None, alone=False) is not None
    assert _pair_params(entry(Line(1, -5), Line(2, 5)), NOW, None, alone=True) is not None
    for other in (
        entry(Line(1, 5), Line(2, -3), Line(3, -2)),
        entry(Line(1, 5), Line(1, -5)),
        entry(Line(1, 5), Line(2, -4)),
        entry(Line(1, 0, pending_debits=5), Line(2, 0, pending_credits=5)),
        entry(Line(1, 5, pending_debits=1), Line(2, -5, pending_credits=1)),
    ):
        assert _pair_params(other, NOW, None, alone=False) is None


def test_0020_downgrades_and_upgrades_again(
    pg_databases: DatabaseFactory, books_class: type[Books], clock: ManualClock
) -> None:
    db = pg_databases.new()

    def has_pair_function() -> bool:
        with db.transaction() as conn:
            found = conn.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname = 'kassa_post_pair'")
            ).scalar_one()
        return bool(found)

    downgrade(db.engine, "0019")
    assert current_revision(db.engine) == "0019"
    assert not has_pair_function()
    upgrade(db.engine)
    assert has_pair_function()
    books = books_class(db, clock)
    alice = books.customer("2.00")
    books.spend(alice, "0.50")
    assert books.available(alice) == Money(1_500_000, USD)
    books.assert_books_balance()
