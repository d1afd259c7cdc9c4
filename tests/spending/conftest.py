"""Spending as its tests use it: customers with USD balances, usage batches, activations, and
account states, each helper its own unit of work as an API request or worker step would be.

Test modules import `Shop` under `TYPE_CHECKING` only (pytest imports conftest itself); the
`shop` fixture hands out an instance and `shop_class` the class, for tests that make their own
databases (the PostgreSQL races).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, Table, func, select

from kassa.accounts import service as customers
from kassa.accounts import states
from kassa.accounts.service import CustomerAccount
from kassa.accounts.states import AccountState, ReasonCode, StateChange
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.ledger import holds, house, transfers
from kassa.ledger.accounts import all_balances, get_balance, open_account
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.model import AccountKind, Balance, Hold, NormalSide, TransactionKind
from kassa.ledger.tables import (
    idempotency_record,
    ledger_hold,
    ledger_posting,
    ledger_transaction,
)
from kassa.money import USD, Money
from kassa.spending import activations, usage
from kassa.spending.activations import Activation
from kassa.spending.tables import activation, usage_batch, usage_event
from kassa.spending.usage import UsageBatch, UsageEvent

SCOPE = "test-client"


def usd(dollars: str) -> Money:
    """`usd("3.00")`: dollars as written, held in micro-USD."""
    return Money.parse(dollars, USD, allow_negative=True)


class Shop:
    def __init__(self, db: Database, clock: ManualClock) -> None:
        self.db = db
        self.clock = clock
        self._names = itertools.count(1)
        with db.transaction() as conn:
            now = clock.now()
            self.revenue = house.revenue(conn, USD, now).id
            # Where top-ups come from: the USD side of crypto received.
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

    # -- setup ------------------------------------------------------------------------------

    def customer(self, balance: str = "0.00") -> CustomerAccount:
        with self.db.transaction() as conn:
            created = customers.create(
                conn, external_id=f"user-{next(self._names)}", now=self.now, request=None
            )
        if usd(balance).is_positive:
            self.deposit(created, balance)
        return created

    def deposit(self, account: CustomerAccount, dollars: str) -> uuid.UUID:
        with self.db.transaction() as conn:
            return transfers.transfer(
                conn,
                debit_account_id=self.deposits,
                credit_account_id=account.ledger_account_id,
                amount=usd(dollars),
                now=self.now,
                request=None,
                kind=TransactionKind.DEPOSIT,
            )

    def reverse(self, transaction_id: uuid.UUID) -> uuid.UUID:
        """A chargeback: may take the customer below zero (frozen by the ledger)."""
        with self.db.transaction() as conn:
            return transfers.reverse(
                conn, transaction_id, now=self.now, request=None, reason="chargeback", actor="ops"
            )

    def fresh(self, account: CustomerAccount) -> CustomerAccount:
        """The account as stored now (its status may have changed)."""
        with self.db.transaction() as conn:
            return customers.get(conn, account.id)

    # -- spending, each its own unit of work --------------------------------------------------

    def usage(
        self, account: CustomerAccount, batch: Sequence[UsageEvent], *, key: str | None = None
    ) -> UsageBatch:
        request = None
        if key is not None:
            fingerprint = [[e.event_id, e.amount.amount, e.description] for e in batch]
            request = self.key(key, "usage", account=str(account.id), events=fingerprint)
        with self.db.transaction() as conn:
            return usage.record_usage(
                conn, self.fresh_in(conn, account), batch, now=self.now, request=request
            )

    @staticmethod
    def fresh_in(conn: Connection, account: CustomerAccount) -> CustomerAccount:
        """Re-read inside the unit of work, as a route does: the status may have changed."""
        return customers.get(conn, account.id)

    def last_usage_at(self, account: CustomerAccount) -> datetime | None:
        with self.db.transaction() as conn:
            return usage.last_usage_at(conn, account.id)

    def reserve(
        self,
        account: CustomerAccount,
        dollars: str,
        *,
        window: timedelta = activations.DEFAULT_WINDOW,
        key: str | None = None,
    ) -> Activation:
        request = (
            None
            if key is None
            else self.key(
                key, "reserve", account=str(account.id), price=dollars, window=str(window)
            )
        )
        with self.db.transaction() as conn:
            return activations.reserve(
                conn,
                self.fresh_in(conn, account),
                price=usd(dollars),
                window=window,
                now=self.now,
                request=request,
                description="number +44 20 7946 0000",
            )

    def cancel(
        self, account: CustomerAccount, activation_id: uuid.UUID, *, key: str | None = None
    ) -> Activation:
        request = None if key is None else self.key(key, "cancel", id=str(activation_id))
        with self.db.transaction() as conn:
            return activations.cancel(conn, account, activation_id, now=self.now, request=request)

    def fulfil(
        self, account: CustomerAccount, activation_id: uuid.UUID, *, key: str | None = None
    ) -> Activation:
        request = None if key is None else self.key(key, "fulfil", id=str(activation_id))
        with self.db.transaction() as conn:
            return activations.fulfil(conn, account, activation_id, now=self.now, request=request)

    def activation(self, account: CustomerAccount, activation_id: uuid.UUID) -> Activation:
        with self.db.transaction() as conn:
            return activations.get(conn, account, activation_id, now=self.now)

    def stored_status(self, activation_id: uuid.UUID) -> str:
        with self.db.transaction() as conn:
            status: str = conn.execute(
                select(activation.c.status).where(activation.c.id == activation_id)
            ).scalar_one()
            return status

    def hold(self, hold_id: uuid.UUID) -> Hold:
        with self.db.transaction() as conn:
            return holds.get_hold(conn, hold_id)

    # -- states -------------------------------------------------------------------------------

    def set_state(
        self,
        account: CustomerAccount,
        state: AccountState,
        reason_code: ReasonCode = ReasonCode.VIOLATION,
        reason: str = "scraping after two warnings",
        *,
        actor: str = "api-key:ops",
        key: str | None = None,
    ) -> StateChange:
        request = (
            None
            if key is None
            else self.key(key, "state", account=str(account.id), state=state.value)
        )
        with self.db.transaction() as conn:
            return states.change_state(
                conn,
                account.id,
                to=state,
                reason_code=reason_code,
                reason=reason,
                actor=actor,
                now=self.now,
                request=request,
            )

    def history(self, account: CustomerAccount) -> Sequence[StateChange]:
        with self.db.transaction() as conn:
            return states.history(conn, account.id)

    # -- reads --------------------------------------------------------------------------------

    def balance(self, account: CustomerAccount) -> Balance:
        with self.db.transaction() as conn:
            return get_balance(conn, account.ledger_account_id)

    def available(self, account: CustomerAccount) -> Money:
        return self.balance(account).available

    def revenue_posted(self) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, self.revenue).posted

    def count(self, table: Table) -> int:
        with self.db.transaction() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def usage_transactions(self) -> list[int]:
        """The number of postings of each usage journal transaction."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                select(func.count(ledger_posting.c.id))
                .join(
                    ledger_transaction, ledger_transaction.c.id == ledger_posting.c.transaction_id
                )
                .where(ledger_transaction.c.kind == str(TransactionKind.USAGE))
                .group_by(ledger_transaction.c.id)
            )
            return [int(n) for n in rows.scalars()]

    def snapshot(self) -> tuple[dict[str, int], dict[int, Balance]]:
        """Row counts of everything spending and the ledger write, and every balance."""
        tables = (
            ledger_transaction,
            ledger_posting,
            ledger_hold,
            usage_batch,
            usage_event,
            activation,
        )
        counts = {table.name: self.count(table) for table in tables}
        with self.db.transaction() as conn:
            return counts, all_balances(conn)

    def stored_outcome(self, key: str) -> str | None:
        with self.db.transaction() as conn:
            outcome: str | None = conn.execute(
                select(idempotency_record.c.outcome).where(
                    idempotency_record.c.scope == SCOPE, idempotency_record.c.key == key
                )
            ).scalar_one_or_none()
            return outcome


@pytest.fixture
def shop(db: Database, clock: ManualClock) -> Shop:
    return Shop(db, clock)


@pytest.fixture
def shop_class() -> type[Shop]:
    return Shop
