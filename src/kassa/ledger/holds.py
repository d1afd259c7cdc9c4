"""Holds: two-phase transfers that reserve funds.

Create moves the amount into the pending sums (the debit account's available balance drops at
once). A hold then resolves exactly once: capture (full or partial — the rest is released),
void, or expiry. The hold row is locked before it is resolved and the status change is
conditional on `status = 'pending'`, so two resolvers can never both win. A capture at or
after `expires_at` is refused and the hold is expired on the spot, returning the funds.

Expiry does not wait for a sweeper: `expire_due_holds_of` expires one account's due holds in
the caller's transaction, and runs before that account is debited (`create_hold`) and, through
the API's fences, before anything of it is read. The worker's `expire_due_holds` only tidies up
accounts nobody touches.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, insert, select, update

from kassa.errors import KassaError
from kassa.ledger import idempotency
from kassa.ledger.errors import (
    AccountFrozen,
    CaptureExceedsHold,
    HoldAlreadyResolved,
    HoldExpired,
    HoldNotFound,
    InsufficientFunds,
    UnbalancedTransaction,
)
from kassa.ledger.idempotency import OK, Claim, Request, StoredOutcome
from kassa.ledger.journal import Entry, Line, Posted, journal_for
from kassa.ledger.model import Hold, HoldStatus, TransactionKind
from kassa.ledger.tables import ledger_hold
from kassa.money import Money, asset


def _hold(row: Row[Any]) -> Hold:
    unit = asset(row.asset)
    return Hold(
        id=row.id,
        debit_account_id=row.debit_account_id,
        credit_account_id=row.credit_account_id,
        amount=Money(row.amount, unit),
        status=HoldStatus(row.status),
        expires_at=row.expires_at,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        captured_amount=None if row.captured_amount is None else Money(row.captured_amount, unit),
        capture_transaction_id=row.capture_transaction_id,
        memo=row.memo,
    )


def get_hold(conn: Connection, hold_id: uuid.UUID, *, for_update: bool = False) -> Hold:
    statement = select(ledger_hold).where(ledger_hold.c.id == hold_id)
    if for_update:
        statement = statement.with_for_update()
    row = conn.execute(statement).first()
    if row is None:
        raise HoldNotFound(f"hold {hold_id} does not exist")
    return _hold(row)


def _claim(
    conn: Connection, request: Request | None, now: datetime
) -> Claim | StoredOutcome | None:
    return None if request is None else idempotency.claim(conn, request, now)


def _replay(conn: Connection, stored: StoredOutcome) -> Hold:
    return get_hold(conn, stored.resource_uuid)


def _refuse(conn: Connection, claimed: Claim | None, error: KassaError) -> None:
    """Store a refusal under the caller's key, so a retry gets the same answer."""
    if claimed is not None:
        idempotency.complete_refused(conn, claimed, error)


def create_hold(
    conn: Connection,
    *,
    debit_account_id: int,
    credit_account_id: int,
    amount: Money,
    now: datetime,
    request: Request | None,
    expires_at: datetime | None = None,
    memo: str | None = None,
    actor: str | None = None,
) -> Hold:
    """Reserve `amount`: it will leave `debit_account_id` for `credit_account_id` on capture."""
    if not amount.is_positive:
        raise UnbalancedTransaction("a hold reserves a positive amount")
    if debit_account_id == credit_account_id:
        raise UnbalancedTransaction("a hold moves money between two different accounts")
    claimed = _claim(conn, request, now)
    if isinstance(claimed, StoredOutcome):
        return _replay(conn, claimed)
    # After the replay lookup: a retry of a created hold succeeds even once it has expired.
    if expires_at is not None and expires_at <= now:
        raise UnbalancedTransaction("a hold must expire in the future")
    # The debit may need funds an expired hold still reserves: release those first.
    expire_due_holds_of(conn, debit_account_id, now=now)
    hold_id = uuid.uuid4()
    entry = Entry(
        lines=[
            Line(debit_account_id, pending_debits=amount.amount, asset=str(amount.asset.code)),
            Line(credit_account_id, pending_credits=amount.amount, asset=str(amount.asset.code)),
        ],
        kind=TransactionKind.CAPTURE,
        hold_id=hold_id,
    )
    try:
        journal_for(conn).post(conn, entry, now, None)
    except (InsufficientFunds, AccountFrozen) as refused:
        _refuse(conn, claimed, refused)
        raise
    conn.execute(
        insert(ledger_hold).values(
            id=hold_id,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            asset=str(amount.asset.code),
            amount=amount.amount,
            status=str(HoldStatus.PENDING),
            expires_at=expires_at,
            created_at=now,
            memo=memo,
            actor=actor,
        )
    )
    if claimed is not None:
        idempotency.complete(conn, claimed, OK, str(hold_id), None)
    return get_hold(conn, hold_id)


def _release(conn: Connection, hold: Hold, status: HoldStatus, now: datetime) -> None:
    """Return the reserved amount in full and resolve the hold as voided or expired."""
    lines = [
        Line(hold.debit_account_id, pending_debits=-hold.amount.amount),
        Line(hold.credit_account_id, pending_credits=-hold.amount.amount),
    ]
    journal_for(conn).post(conn, Entry(lines, TransactionKind.CAPTURE, hold_id=hold.id), now, None)
    _resolve(conn, hold, status, now)


def _resolve(
    conn: Connection,
    hold: Hold,
    status: HoldStatus,
    now: datetime,
    captured: Money | None = None,
    transaction_id: uuid.UUID | None = None,
) -> None:
    result = conn.execute(
        update(ledger_hold)
        .where(ledger_hold.c.id == hold.id, ledger_hold.c.status == str(HoldStatus.PENDING))
        .values(
            status=str(status),
            resolved_at=now,
            captured_amount=None if captured is None else captured.amount,
            capture_transaction_id=transaction_id,
        )
    )
    if result.rowcount != 1:
        raise HoldAlreadyResolved(f"hold {hold.id} was resolved concurrently")


def _pending_or_refuse(hold: Hold) -> None:
    # An expired hold answers hold_expired whether or not the sweeper got to it first.
    if hold.status is HoldStatus.EXPIRED:
        raise HoldExpired(f"hold {hold.id} expired at {hold.expires_at:%Y-%m-%d %H:%M:%S}Z")
    if hold.status is not HoldStatus.PENDING:
        raise HoldAlreadyResolved(f"hold {hold.id} is already {hold.status}")


def _is_expired(hold: Hold, now: datetime) -> bool:
    return hold.expires_at is not None and hold.expires_at <= now


def capture_hold(
    conn: Connection,
    hold_id: uuid.UUID,
    *,
    now: datetime,
    request: Request | None,
    amount: Money | None = None,
    memo: str | None = None,
    actor: str | None = None,
) -> Hold:
    """Post `amount` (default: all) of the hold; the remainder returns to the debit account."""
    claimed = _claim(conn, request, now)
    if isinstance(claimed, StoredOutcome):
        return _replay(conn, claimed)
    hold = get_hold(conn, hold_id, for_update=True)
    try:
        _pending_or_refuse(hold)
        take = hold.amount if amount is None else amount
        if take.asset != hold.amount.asset or not take.is_positive or take > hold.amount:
            raise CaptureExceedsHold(
                f"capture must be between 0 and {hold.amount} (the hold), got {take}"
            )
        if _is_expired(hold, now):
            _release(conn, hold, HoldStatus.EXPIRED, now)
            # Recorded: the expiry just written stands whatever the caller does with the refusal.
            raise HoldExpired(
                f"hold {hold.id} expired at {hold.expires_at:%Y-%m-%d %H:%M:%S}Z"
            ).record()
    except (HoldAlreadyResolved, CaptureExceedsHold, HoldExpired) as refused:
        _refuse(conn, claimed, refused)
        raise
    lines = [
        Line(hold.debit_account_id, posted=take.amount, pending_debits=-hold.amount.amount),
        Line(hold.credit_account_id, posted=-take.amount, pending_credits=-hold.amount.amount),
    ]
    entry = Entry(
        lines, TransactionKind.CAPTURE, memo=memo or hold.memo, actor=actor, hold_id=hold.id
    )
    result = journal_for(conn).post(conn, entry, now, None)
    transaction_id = result.transaction_id if isinstance(result, Posted) else None
    _resolve(conn, hold, HoldStatus.CAPTURED, now, take, transaction_id)
    if claimed is not None:
        idempotency.complete(conn, claimed, OK, str(hold.id), None)
    return get_hold(conn, hold.id)


def void_hold(
    conn: Connection, hold_id: uuid.UUID, *, now: datetime, request: Request | None
) -> Hold:
    """Release the hold in full. Voiding after expiry time still voids (funds return either way)."""
    claimed = _claim(conn, request, now)
    if isinstance(claimed, StoredOutcome):
        return _replay(conn, claimed)
    hold = get_hold(conn, hold_id, for_update=True)
    try:
        _pending_or_refuse(hold)
    except (HoldAlreadyResolved, HoldExpired) as refused:
        _refuse(conn, claimed, refused)
        raise
    _release(conn, hold, HoldStatus.VOIDED, now)
    if claimed is not None:
        idempotency.complete(conn, claimed, OK, str(hold.id), None)
    return get_hold(conn, hold.id)


def expire_due_holds(conn: Connection, *, now: datetime, limit: int = 500) -> list[uuid.UUID]:
    """Expire up to `limit` pending holds whose time has come. Safe to run in several
    workers at once on PostgreSQL (rows already being expired elsewhere are skipped)."""
    return _expire(conn, _due(now).limit(limit), now)


def expire_due_holds_of(conn: Connection, account_id: int, *, now: datetime) -> list[uuid.UUID]:
    """Expire the due holds reserving `account_id`'s funds, in the caller's transaction.

    Called before an account's balance or holds are read and before it is debited, so a hold
    past its time reads `expired` and its funds count as available whether or not a sweeper
    runs. Cheap on the hot path: one query on the holds of one account (indexed by debit
    account), and no write at all when nothing is due.
    """
    return _expire(conn, _due(now).where(ledger_hold.c.debit_account_id == account_id), now)


def _due(now: datetime) -> Select[Any]:
    return (
        select(ledger_hold)
        .where(
            ledger_hold.c.status == str(HoldStatus.PENDING),
            ledger_hold.c.expires_at.is_not(None),
            ledger_hold.c.expires_at <= now,
        )
        .order_by(ledger_hold.c.expires_at)
        # A hold another transaction is resolving (or sweeping) is that transaction's to finish.
        .with_for_update(skip_locked=True)
    )


def _expire(conn: Connection, statement: Select[Any], now: datetime) -> list[uuid.UUID]:
    expired = []
    for row in conn.execute(statement).all():
        hold = _hold(row)
        _release(conn, hold, HoldStatus.EXPIRED, now)
        expired.append(hold.id)
    return expired
