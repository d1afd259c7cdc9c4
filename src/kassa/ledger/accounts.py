"""Opening and reading ledger accounts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kassa.ledger.errors import AccountNotFound, LedgerInvariantBroken
from kassa.ledger.model import (
    Account,
    AccountKind,
    Balance,
    HistoryEntry,
    NormalSide,
    TransactionKind,
)
from kassa.ledger.tables import ledger_account, ledger_posting, ledger_transaction
from kassa.money import Asset, Money, asset


def open_account(
    conn: Connection,
    *,
    code: str,
    asset_: Asset,
    normal_side: NormalSide,
    kind: AccountKind,
    allow_negative: bool,
    now: datetime,
    owner: str | None = None,
) -> Account:
    """Get or create the account named `code` (safe under concurrency: unique code).

    An existing account is read first and not inserted again: on PostgreSQL an
    ``INSERT … ON CONFLICT DO NOTHING`` that meets the row waits for whichever transaction is
    updating it, so on a house account every entry posts to (revenue) the insert alone would
    queue the caller behind all of them, long before its own entry takes the row lock."""
    row = conn.execute(_BY_CODE, {"code": code}).first()
    if row is not None:
        return _checked(_account(row), asset_, normal_side, allow_negative)
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        insert(ledger_account)
        .values(
            code=code,
            asset=str(asset_.code),
            normal_side=str(normal_side),
            kind=str(kind),
            owner=owner,
            allow_negative=allow_negative,
            debits_posted=0,
            credits_posted=0,
            debits_pending=0,
            credits_pending=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["code"])
    )
    return _checked(get_account_by_code(conn, code), asset_, normal_side, allow_negative)


_BY_CODE = select(ledger_account).where(ledger_account.c.code == bindparam("code"))


def _checked(
    account: Account, asset_: Asset, normal_side: NormalSide, allow_negative: bool
) -> Account:
    if (
        account.asset != asset_
        or account.normal_side is not normal_side
        or account.allow_negative != allow_negative
    ):
        raise LedgerInvariantBroken(f"account {account.code} exists with a different definition")
    return account


def _account(row: Row[Any]) -> Account:
    return Account(
        id=row.id,
        code=row.code,
        asset=asset(row.asset),
        normal_side=NormalSide(row.normal_side),
        kind=AccountKind(row.kind),
        owner=row.owner,
        allow_negative=row.allow_negative,
        created_at=row.created_at,
    )


def get_account(conn: Connection, account_id: int) -> Account:
    row = conn.execute(select(ledger_account).where(ledger_account.c.id == account_id)).first()
    if row is None:
        raise AccountNotFound(f"ledger account {account_id} does not exist")
    return _account(row)


def get_account_by_code(conn: Connection, code: str) -> Account:
    row = conn.execute(select(ledger_account).where(ledger_account.c.code == code)).first()
    if row is None:
        raise AccountNotFound(f"ledger account {code} does not exist")
    return _account(row)


def get_balance(conn: Connection, account_id: int) -> Balance:
    row = conn.execute(select(ledger_account).where(ledger_account.c.id == account_id)).first()
    if row is None:
        raise AccountNotFound(f"ledger account {account_id} does not exist")
    return _balance(row)


def lock_balances(conn: Connection, account_ids: Collection[int]) -> dict[int, Balance]:
    """Lock the ledger accounts in ascending id order (the ledger's lock order) and return
    their balances as locked (current until the transaction ends)."""
    rows = conn.execute(
        select(ledger_account)
        .where(ledger_account.c.id.in_(sorted(set(account_ids))))
        .order_by(ledger_account.c.id)
        .with_for_update()
    )
    return {row.id: _balance(row) for row in rows}


def _balance(row: Row[Any]) -> Balance:
    return Balance(
        asset=asset(row.asset),
        normal_side=NormalSide(row.normal_side),
        allow_negative=row.allow_negative,
        debits_posted=row.debits_posted,
        credits_posted=row.credits_posted,
        debits_pending=row.debits_pending,
        credits_pending=row.credits_pending,
    )


def all_balances(conn: Connection) -> dict[int, Balance]:
    return {row.id: _balance(row) for row in conn.execute(select(ledger_account))}


def history(
    conn: Connection, account_id: int, *, limit: int = 50, before_posting_id: int | None = None
) -> Sequence[HistoryEntry]:
    """Newest first. Page with `before_posting_id` = the last entry's posting id."""
    account = get_account(conn, account_id)
    sign = 1 if account.normal_side is NormalSide.DEBIT else -1
    conditions = [ledger_posting.c.account_id == account_id]
    if before_posting_id is not None:
        conditions.append(ledger_posting.c.id < before_posting_id)
    rows = conn.execute(
        select(
            ledger_posting.c.id,
            ledger_posting.c.transaction_id,
            ledger_posting.c.amount,
            ledger_transaction.c.kind,
            ledger_transaction.c.memo,
            ledger_transaction.c.created_at,
        )
        .join(ledger_transaction, ledger_transaction.c.id == ledger_posting.c.transaction_id)
        .where(and_(*conditions))
        .order_by(ledger_posting.c.id.desc())
        .limit(limit)
    )
    return [
        HistoryEntry(
            posting_id=row.id,
            transaction_id=row.transaction_id,
            kind=TransactionKind(row.kind),
            amount=Money(sign * row.amount, account.asset),
            memo=row.memo,
            created_at=row.created_at,
        )
        for row in rows
    ]
