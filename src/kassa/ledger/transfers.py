"""Posting money: transfers, multi-leg transactions, reversals, operator adjustments."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from kassa.clock import DatabaseClock
from kassa.db import Database
from kassa.errors import InvalidRequest
from kassa.ledger import idempotency
from kassa.ledger.errors import (
    AlreadyReversed,
    LedgerInvariantBroken,
    TransactionNotFound,
    UnbalancedTransaction,
)
from kassa.ledger.idempotency import Request, StoredOutcome
from kassa.ledger.journal import Entry, Line, PostResult, Replayed, journal_for, post_alone
from kassa.ledger.model import JournalTransaction, Posting, TransactionKind
from kassa.ledger.tables import ledger_posting, ledger_transaction
from kassa.money import Money, asset


@dataclass(frozen=True, slots=True)
class Leg:
    """One posting of a multi-leg transaction: + debits `account_id`, − credits it."""

    account_id: int
    amount: Money


def post(
    conn: Connection,
    legs: Sequence[Leg],
    *,
    kind: TransactionKind,
    now: datetime | None,
    request: Request | None,
    memo: str | None = None,
    actor: str | None = None,
    reason: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> uuid.UUID:
    """Post a balanced multi-leg transaction. Returns its id (the stored one on a replay).
    `now` None means the database clock (PostgreSQL only)."""
    entry = _entry(legs, kind=kind, memo=memo, actor=actor, reason=reason, metadata=metadata)
    return _transaction_id(journal_for(conn).post(conn, entry, now, request))


@dataclass(frozen=True, slots=True)
class NewTransaction:
    """One transaction of `post_many`: `post`'s arguments but the connection and the time."""

    legs: Sequence[Leg]
    kind: TransactionKind
    request: Request | None
    memo: str | None = None
    actor: str | None = None
    reason: str | None = None
    metadata: Mapping[str, Any] | None = None


def post_many(
    conn: Connection, transactions: Sequence[NewTransaction], *, now: datetime | None
) -> list[uuid.UUID]:
    """`post` of each transaction in order, each its own journal transaction under its own
    key, with the same answers and errors; on PostgreSQL the batch's calls go to the database
    in one round trip (`PostgresJournal.post_many`)."""
    items = [
        (
            _entry(
                new.legs,
                kind=new.kind,
                memo=new.memo,
                actor=new.actor,
                reason=new.reason,
                metadata=new.metadata,
            ),
            new.request,
        )
        for new in transactions
    ]
    return [_transaction_id(result) for result in journal_for(conn).post_many(conn, items, now)]


def commit_post(
    db: Database,
    legs: Sequence[Leg],
    *,
    kind: TransactionKind,
    now: datetime | None,
    request: Request | None,
    memo: str | None = None,
    actor: str | None = None,
    reason: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> uuid.UUID:
    """`post` as a unit of work of its own, committed when it returns: for an entry that is
    all its caller writes. One round trip on PostgreSQL (`journal.post_alone`)."""
    entry = _entry(legs, kind=kind, memo=memo, actor=actor, reason=reason, metadata=metadata)
    return _transaction_id(post_alone(db, entry, now, request))


def _entry(
    legs: Sequence[Leg],
    *,
    kind: TransactionKind,
    memo: str | None,
    actor: str | None,
    reason: str | None,
    metadata: Mapping[str, Any] | None,
) -> Entry:
    if len(legs) < 2:
        raise UnbalancedTransaction("a journal transaction needs at least two postings")
    totals: dict[str, int] = {}
    for leg in legs:
        if leg.amount.is_zero:
            raise UnbalancedTransaction("a posting moves a non-zero amount")
        code = str(leg.amount.asset.code)
        totals[code] = totals.get(code, 0) + leg.amount.amount
    if any(totals.values()):
        raise UnbalancedTransaction(f"postings do not sum to zero per asset: {totals}")
    return Entry(
        lines=[
            Line(leg.account_id, posted=leg.amount.amount, asset=str(leg.amount.asset.code))
            for leg in legs
        ],
        kind=kind,
        memo=memo,
        actor=actor,
        reason=reason,
        metadata=metadata,
    )


def transfer(
    conn: Connection,
    *,
    debit_account_id: int,
    credit_account_id: int,
    amount: Money,
    now: datetime | None,
    request: Request | None,
    kind: TransactionKind = TransactionKind.TRANSFER,
    memo: str | None = None,
    actor: str | None = None,
) -> uuid.UUID:
    """Debit one account and credit the other with `amount`. A user (credit-normal) paying
    revenue is a debit of the user and a credit of revenue."""
    legs = _transfer_legs(debit_account_id, credit_account_id, amount)
    return post(conn, legs, kind=kind, now=now, request=request, memo=memo, actor=actor)


def commit_transfer(
    db: Database,
    *,
    debit_account_id: int,
    credit_account_id: int,
    amount: Money,
    now: datetime | None,
    request: Request | None,
    kind: TransactionKind = TransactionKind.TRANSFER,
    memo: str | None = None,
    actor: str | None = None,
) -> uuid.UUID:
    """`transfer` as a unit of work of its own (see `commit_post`): one round trip on
    PostgreSQL, so even a house account every transfer credits is locked only for the
    stored function and its commit."""
    legs = _transfer_legs(debit_account_id, credit_account_id, amount)
    return commit_post(db, legs, kind=kind, now=now, request=request, memo=memo, actor=actor)


def _transfer_legs(debit_account_id: int, credit_account_id: int, amount: Money) -> list[Leg]:
    if not amount.is_positive:
        raise UnbalancedTransaction("a transfer moves a positive amount")
    if debit_account_id == credit_account_id:
        raise UnbalancedTransaction("a transfer moves money between two different accounts")
    return [Leg(debit_account_id, amount), Leg(credit_account_id, -amount)]


def reverse(
    conn: Connection,
    transaction_id: uuid.UUID,
    *,
    now: datetime | None,
    request: Request | None,
    reason: str,
    actor: str | None = None,
    memo: str | None = None,
) -> uuid.UUID:
    """Post the mirror image of a transaction. May take user accounts below zero (a chain
    reorg or chargeback took the money back); such an account is frozen until covered.
    ``memo`` is what the customer's ledger shows next to the reversal; without one the entry
    says what it reverses and why, so a customer's statement never shows a bare reversal."""
    # Lock the original first: a concurrent reversal waits here, then sees this one.
    original = get_transaction(conn, transaction_id, for_update=True)
    entry = Entry(
        lines=[
            Line(p.account_id, posted=-p.amount.amount, asset=str(p.amount.asset.code))
            for p in original.postings
        ],
        kind=TransactionKind.REVERSAL,
        memo=memo or _reversal_memo(original, reason),
        reason=reason,
        actor=actor,
        reverses_id=transaction_id,
        force=True,
    )
    already = conn.execute(
        select(ledger_transaction.c.id).where(ledger_transaction.c.reverses_id == transaction_id)
    ).scalar_one_or_none()
    if already is None:
        return _transaction_id(journal_for(conn).post(conn, entry, now, request))
    # Already reversed: a retry of the same request gets the stored reversal back; any other
    # request is refused (and the refusal stored under its key).
    error = AlreadyReversed(f"transaction {transaction_id} was already reversed by {already}")
    if request is None:
        raise error
    outcome = idempotency.claim(conn, request, now or DatabaseClock().now(conn))
    if isinstance(outcome, StoredOutcome):
        return _transaction_id(Replayed(outcome))
    idempotency.complete_refused(conn, outcome, error)
    raise error


def _reversal_memo(original: JournalTransaction, reason: str) -> str:
    what = f"{original.kind.value} {original.id}"
    if original.memo:
        what += f" ({original.memo})"
    return f"reversal of {what}: {reason}"


def reverse_asset(
    conn: Connection,
    transaction_id: uuid.UUID,
    *,
    asset_code: str,
    now: datetime | None,
    request: Request | None,
    memo: str,
    reason: str,
    actor: str,
    force: bool,
    metadata: Mapping[str, Any] | None = None,
) -> uuid.UUID:
    """Post the mirror image of one asset's postings of a transaction, leaving the others.

    A chargeback takes back a deposit's USD credit while the coins it brought stay where the
    chain says they are: the USD legs (customer and FX) are mirrored, the native legs are not.
    With `force` the customer may go below zero (and is frozen); without, it is refused like
    any spend the balance cannot cover. The original is locked so that two reversals queue."""
    original = get_transaction(conn, transaction_id, for_update=True)
    lines = [
        Line(p.account_id, posted=-p.amount.amount, asset=asset_code)
        for p in original.postings
        if str(p.amount.asset.code) == asset_code
    ]
    if len(lines) < 2:
        raise UnbalancedTransaction(f"transaction {transaction_id} has no {asset_code} legs")
    entry = Entry(
        lines=lines,
        kind=TransactionKind.REVERSAL,
        memo=memo,
        actor=actor,
        reason=reason,
        metadata={"reverses_asset_of": str(transaction_id), **(metadata or {})},
        force=force,
    )
    return _transaction_id(journal_for(conn).post(conn, entry, now, request))


def _transaction_id(result: PostResult) -> uuid.UUID:
    if isinstance(result, Replayed):
        return result.stored.resource_uuid
    if result.transaction_id is None:
        raise LedgerInvariantBroken("a posted transaction has an id")
    return result.transaction_id


def get_transaction(
    conn: Connection, transaction_id: uuid.UUID, *, for_update: bool = False
) -> JournalTransaction:
    statement = select(ledger_transaction).where(ledger_transaction.c.id == transaction_id)
    if for_update:
        statement = statement.with_for_update()
    row = conn.execute(statement).first()
    if row is None:
        raise TransactionNotFound(f"transaction {transaction_id} does not exist")
    postings = tuple(
        Posting(p.id, p.transaction_id, p.account_id, Money(p.amount, asset(p.asset)))
        for p in conn.execute(
            select(ledger_posting)
            .where(ledger_posting.c.transaction_id == transaction_id)
            .order_by(ledger_posting.c.id)
        )
    )
    return JournalTransaction(
        id=row.id,
        kind=TransactionKind(row.kind),
        memo=row.memo,
        actor=row.actor,
        reason=row.reason,
        reverses_id=row.reverses_id,
        hold_id=row.hold_id,
        created_at=row.created_at,
        postings=postings,
    )


def adjust(
    conn: Connection,
    *,
    account_id: int,
    amount: Money,
    direction: str,
    reason: str,
    actor: str,
    now: datetime,
    request: Request | None,
) -> uuid.UUID:
    """An operator's manual credit or debit of an account, against the house adjustments
    account. A debit is refused like any spend if the balance cannot cover it."""
    if not amount.is_positive:
        raise UnbalancedTransaction("an adjustment moves a positive amount")
    if not reason.strip() or not actor.strip():
        raise InvalidRequest("an adjustment needs a reason and an actor")
    if direction not in ("credit", "debit"):
        raise InvalidRequest("an adjustment is a 'credit' or a 'debit'")
    from kassa.ledger import house

    offset = house.adjustments(conn, amount.asset, now)
    target = Leg(account_id, amount if direction == "debit" else -amount)
    return post(
        conn,
        [target, Leg(offset.id, -target.amount)],
        kind=TransactionKind.ADJUSTMENT,
        now=now,
        request=request,
        actor=actor,
        reason=reason,
        memo=f"operator {direction}: {reason}",
    )
