"""The ledger as its tests use it: customers with USD balances, the house's accounts, keyed
requests, and reads straight from the database.

`Books` wraps one migrated database and a `ManualClock`. Every helper runs its own unit of work
(`Database.transaction()`), as an API request or a worker step would; tests that are about the
unit of work itself open `db.transaction()` and call the ledger directly.

Test modules import `Books` under `TYPE_CHECKING` only (pytest imports conftest itself); the
`books` fixture hands out an instance and `books_class` the class, for tests and state machines
that make their own databases.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import Table, func, select

from kassa.accounts import service as customers
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.ledger import holds, house, transfers
from kassa.ledger.accounts import all_balances, get_balance, open_account
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.model import AccountKind, Balance, Hold, NormalSide, TransactionKind
from kassa.ledger.tables import (
    idempotency_record,
    ledger_account,
    ledger_hold,
    ledger_posting,
    ledger_transaction,
)
from kassa.money import USD, Money

SCOPE = "test-client"


def usd(dollars: str) -> Money:
    """`usd("3.00")`: dollars as written, held in micro-USD."""
    return Money.parse(dollars, USD, allow_negative=True)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the ledger has written: row counts and every account's four sums."""

    transactions: int
    postings: int
    holds: int
    idempotency_records: int
    balances: dict[int, Balance]


class Books:
    def __init__(self, db: Database, clock: ManualClock) -> None:
        self.db = db
        self.clock = clock
        self._names = itertools.count(1)
        with db.transaction() as conn:
            now = clock.now()
            self.revenue = house.revenue(conn, USD, now).id
            self.adjustments = house.adjustments(conn, USD, now).id
            # Where top-ups come from: the USD side of crypto received (debit-normal, like
            # the USD leg of fx:BTC in docs/domain.md §3).
            self.deposits = open_account(
                conn,
                code="clearing:deposits:USD",
                asset_=USD,
                normal_side=NormalSide.DEBIT,
                kind=AccountKind.CLEARING,
                allow_negative=True,
                now=now,
            ).id

    @property
    def now(self) -> datetime:
        return self.clock.now()

    @staticmethod
    def key(name: str, operation: str, **params: object) -> Request:
        """The request an API client sends with `Idempotency-Key: name`."""
        return Request.of(IdempotencyKey(SCOPE, name), operation, params)

    # -- writes, each its own unit of work ------------------------------------------------

    def customer(self, balance: str = "0.00") -> int:
        """A new customer's USD ledger account, topped up with `balance` dollars."""
        with self.db.transaction() as conn:
            created = customers.create(
                conn, external_id=f"user-{next(self._names)}", now=self.now, request=None
            )
        if usd(balance).is_positive:
            self.deposit(created.ledger_account_id, balance)
        return created.ledger_account_id

    def deposit(self, account_id: int, dollars: str, *, key: str | None = None) -> uuid.UUID:
        """A top-up: Dr deposits clearing / Cr the customer."""
        request = self.key(key, "deposit", account=account_id, amount=dollars) if key else None
        with self.db.transaction() as conn:
            return transfers.transfer(
                conn,
                debit_account_id=self.deposits,
                credit_account_id=account_id,
                amount=usd(dollars),
                now=self.now,
                request=request,
                kind=TransactionKind.DEPOSIT,
            )

    def spend(self, account_id: int, dollars: str, *, key: str | None = None) -> uuid.UUID:
        """Usage paid from the balance: Dr the customer / Cr revenue."""
        request = self.key(key, "spend", account=account_id, amount=dollars) if key else None
        with self.db.transaction() as conn:
            return transfers.transfer(
                conn,
                debit_account_id=account_id,
                credit_account_id=self.revenue,
                amount=usd(dollars),
                now=self.now,
                request=request,
                kind=TransactionKind.USAGE,
            )

    def hold(
        self,
        account_id: int,
        dollars: str,
        *,
        expires_at: datetime | None = None,
        key: str | None = None,
    ) -> Hold:
        """An activation: reserve `dollars` of the customer's balance for revenue."""
        request = self.key(key, "hold", account=account_id, amount=dollars) if key else None
        with self.db.transaction() as conn:
            return holds.create_hold(
                conn,
                debit_account_id=account_id,
                credit_account_id=self.revenue,
                amount=usd(dollars),
                now=self.now,
                request=request,
                expires_at=expires_at,
            )

    def capture(
        self, hold_id: uuid.UUID, dollars: str | None = None, *, key: str | None = None
    ) -> Hold:
        request = self.key(key, "capture", hold=str(hold_id), amount=dollars) if key else None
        with self.db.transaction() as conn:
            return holds.capture_hold(
                conn,
                hold_id,
                now=self.now,
                request=request,
                amount=None if dollars is None else usd(dollars),
            )

    def void(self, hold_id: uuid.UUID, *, key: str | None = None) -> Hold:
        request = self.key(key, "void", hold=str(hold_id)) if key else None
        with self.db.transaction() as conn:
            return holds.void_hold(conn, hold_id, now=self.now, request=request)

    def expire_due_holds(self) -> list[uuid.UUID]:
        with self.db.transaction() as conn:
            return holds.expire_due_holds(conn, now=self.now)

    def reverse(
        self, transaction_id: uuid.UUID, *, reason: str = "chargeback", key: str | None = None
    ) -> uuid.UUID:
        request = (
            self.key(key, "reverse", transaction=str(transaction_id), reason=reason)
            if key
            else None
        )
        with self.db.transaction() as conn:
            return transfers.reverse(
                conn, transaction_id, now=self.now, request=request, reason=reason, actor="ops"
            )

    # -- reads ------------------------------------------------------------------------------

    def balance(self, account_id: int) -> Balance:
        with self.db.transaction() as conn:
            return get_balance(conn, account_id)

    def available(self, account_id: int) -> Money:
        return self.balance(account_id).available

    def posted(self, account_id: int) -> Money:
        return self.balance(account_id).posted

    def get_hold(self, hold_id: uuid.UUID) -> Hold:
        with self.db.transaction() as conn:
            return holds.get_hold(conn, hold_id)

    def snapshot(self) -> Snapshot:
        with self.db.transaction() as conn:

            def count(table: Table) -> int:
                return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

            return Snapshot(
                transactions=count(ledger_transaction),
                postings=count(ledger_posting),
                holds=count(ledger_hold),
                idempotency_records=count(idempotency_record),
                balances=all_balances(conn),
            )

    def stored_outcome(self, key: str) -> str | None:
        """The outcome committed under `key`, or None when no record exists."""
        with self.db.transaction() as conn:
            outcome: str | None = conn.execute(
                select(idempotency_record.c.outcome).where(
                    idempotency_record.c.scope == SCOPE, idempotency_record.c.key == key
                )
            ).scalar_one_or_none()
            return outcome

    def assert_books_balance(self) -> None:
        """Debits equal credits per asset and per transaction, and every account's stored
        posted sums are the fold of its postings. Sums are taken in Python: on SQLite the
        amounts are text."""
        with self.db.transaction() as conn:
            per_asset: dict[str, int] = defaultdict(int)
            per_transaction: dict[tuple[uuid.UUID, str], int] = defaultdict(int)
            legs: dict[uuid.UUID, int] = defaultdict(int)
            debits: dict[int, int] = defaultdict(int)
            credits: dict[int, int] = defaultdict(int)
            for row in conn.execute(
                select(
                    ledger_posting.c.transaction_id,
                    ledger_posting.c.account_id,
                    ledger_posting.c.asset,
                    ledger_posting.c.amount,
                )
            ):
                per_asset[row.asset] += row.amount
                per_transaction[(row.transaction_id, row.asset)] += row.amount
                legs[row.transaction_id] += 1
                if row.amount > 0:
                    debits[row.account_id] += row.amount
                else:
                    credits[row.account_id] -= row.amount
            accounts = conn.execute(
                select(
                    ledger_account.c.id,
                    ledger_account.c.debits_posted,
                    ledger_account.c.credits_posted,
                )
            ).all()
            transactions = conn.execute(select(func.count()).select_from(ledger_transaction))
            transaction_count = int(transactions.scalar_one())
        assert {a: s for a, s in per_asset.items() if s} == {}
        assert {t: s for t, s in per_transaction.items() if s} == {}
        assert all(n >= 2 for n in legs.values())
        assert len(legs) == transaction_count
        for account in accounts:
            assert (account.debits_posted, account.credits_posted) == (
                debits[account.id],
                credits[account.id],
            ), f"account {account.id}: stored sums differ from its postings"


@pytest.fixture
def books(db: Database, clock: ManualClock) -> Books:
    return Books(db, clock)


@pytest.fixture
def books_class() -> type[Books]:
    return Books
