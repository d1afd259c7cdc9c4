"""Activations: a price reserved for a window, then fulfilled (charged, final) or refunded.

Design
------
* An activation is a ledger hold on the customer's balance (captured into house revenue) that
  expires when the window ends (default 20 minutes). Reserve = create the hold; fulfil = capture
  it in full, which is final; cancel = void it, which returns the price at once.
* States: pending → fulfilled | cancelled | expired, and nothing else (`TRANSITIONS`). A move is
  a conditional update on `status = 'pending'` made under the activation's row lock.
* The hold decides. The worker's sweeper expires due holds, returning the funds within its
  interval (15 s by default), without knowing about activations; a hold can also be resolved
  through the holds API. So an activation follows its hold (`FOLLOWS_HOLD`): a read shows the
  status the hold implies — expired as soon as the window ends, even before the sweep has
  returned the funds (`refunded` tells). The stored status catches up when the activation is
  next written, or in bulk with `settle_resolved` (for the worker, after its hold sweep).
* Fulfil after the window: the ledger refuses the capture and expires the hold on the spot, so
  the funds return at once; the activation is expired (`activation_expired`). Cancel after the
  window is refused the same way but leaves the hold to the sweeper, so an activation that
  expired is never recorded as voided.
* Idempotent under the caller's key: the same key and request get the same activation or the
  same refusal. `activation_expired` is stored under the ledger's replayable code `hold_expired`
  (an activation is a hold) and answered as `activation_expired` again on replay.
* Reserving needs an account that may spend (`spending.guard`); fulfilling or cancelling what
  was already reserved does not.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, insert, or_, select, update

from kassa.accounts.service import CustomerAccount
from kassa.ledger import holds, house, idempotency
from kassa.ledger.errors import AccountFrozen, HoldExpired, InsufficientFunds
from kassa.ledger.idempotency import OK, Claim, Request, StoredOutcome
from kassa.ledger.model import Hold, HoldStatus
from kassa.ledger.tables import ledger_hold
from kassa.money import USD, Money
from kassa.spending.errors import (
    ActivationCancelled,
    ActivationExpired,
    ActivationFulfilled,
    ActivationNotFound,
    IllegalActivationTransition,
    InvalidActivation,
)
from kassa.spending.guard import ensure_may_spend
from kassa.spending.tables import activation

DEFAULT_WINDOW = timedelta(minutes=20)
MAX_WINDOW = timedelta(days=1)
MAX_DESCRIPTION_LENGTH = 500


class ActivationStatus(StrEnum):
    PENDING = "pending"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


#: Every allowed move: only a pending activation resolves, and it resolves once.
TRANSITIONS: Mapping[ActivationStatus, frozenset[ActivationStatus]] = {
    ActivationStatus.PENDING: frozenset(
        {ActivationStatus.FULFILLED, ActivationStatus.CANCELLED, ActivationStatus.EXPIRED}
    ),
    ActivationStatus.FULFILLED: frozenset(),
    ActivationStatus.CANCELLED: frozenset(),
    ActivationStatus.EXPIRED: frozenset(),
}

#: The activation status each hold status implies.
FOLLOWS_HOLD: Mapping[HoldStatus, ActivationStatus] = {
    HoldStatus.PENDING: ActivationStatus.PENDING,
    HoldStatus.CAPTURED: ActivationStatus.FULFILLED,
    HoldStatus.VOIDED: ActivationStatus.CANCELLED,
    HoldStatus.EXPIRED: ActivationStatus.EXPIRED,
}


@dataclass(frozen=True, slots=True)
class Activation:
    id: uuid.UUID
    customer_account_id: uuid.UUID
    hold_id: uuid.UUID
    price: Money
    """Micro-USD reserved; charged on fulfilment."""
    window: timedelta
    status: ActivationStatus
    """As of the read: expired once the window has ended, even before the sweep."""
    refunded: bool
    """The price is back in the balance (the hold was voided or expired)."""
    description: str | None
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Stored:
    """An activation row as stored (its status may lag its hold's; see `_settled`)."""

    id: uuid.UUID
    customer_account_id: uuid.UUID
    hold_id: uuid.UUID
    price: int
    window_seconds: int
    status: ActivationStatus
    description: str | None
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None


def _stored(row: Row[Any]) -> _Stored:
    return _Stored(
        id=row.id,
        customer_account_id=row.customer_account_id,
        hold_id=row.hold_id,
        price=row.price,
        window_seconds=row.window_seconds,
        status=ActivationStatus(row.status),
        description=row.description,
        created_at=row.created_at,
        expires_at=row.expires_at,
        resolved_at=row.resolved_at,
    )


def _implied(
    stored: _Stored, hold: Hold, now: datetime
) -> tuple[ActivationStatus, datetime | None]:
    """The status (and resolution time) the stored row, its hold and the clock imply."""
    if stored.status is not ActivationStatus.PENDING:
        return stored.status, stored.resolved_at
    followed = FOLLOWS_HOLD[hold.status]
    if followed is not ActivationStatus.PENDING:
        return followed, hold.resolved_at
    if stored.expires_at <= now:
        return ActivationStatus.EXPIRED, stored.expires_at
    return ActivationStatus.PENDING, None


def _view(stored: _Stored, hold: Hold, now: datetime) -> Activation:
    status, resolved_at = _implied(stored, hold, now)
    return Activation(
        id=stored.id,
        customer_account_id=stored.customer_account_id,
        hold_id=stored.hold_id,
        price=Money(stored.price, USD),
        window=timedelta(seconds=stored.window_seconds),
        status=status,
        refunded=hold.status in (HoldStatus.VOIDED, HoldStatus.EXPIRED),
        description=stored.description,
        created_at=stored.created_at,
        expires_at=stored.expires_at,
        resolved_at=resolved_at,
    )


def _row(
    conn: Connection, account: CustomerAccount, activation_id: uuid.UUID, *, for_update: bool
) -> _Stored:
    statement = select(activation).where(
        activation.c.id == activation_id, activation.c.customer_account_id == account.id
    )
    if for_update:
        statement = statement.with_for_update()
    row = conn.execute(statement).first()
    if row is None:
        # Another account's activation answers exactly like a missing one.
        raise ActivationNotFound(f"activation {activation_id} does not exist")
    return _stored(row)


def get(
    conn: Connection, account: CustomerAccount, activation_id: uuid.UUID, *, now: datetime
) -> Activation:
    """The activation as of `now` (read only: the stored status is settled by the next write)."""
    stored = _row(conn, account, activation_id, for_update=False)
    return _view(stored, holds.get_hold(conn, stored.hold_id), now)


def _advance(conn: Connection, stored: _Stored, to: ActivationStatus, at: datetime) -> _Stored:
    if to not in TRANSITIONS[stored.status]:
        raise IllegalActivationTransition(
            f"activation {stored.id} cannot move from {stored.status} to {to}"
        )
    result = conn.execute(
        update(activation)
        .where(activation.c.id == stored.id, activation.c.status == str(stored.status))
        .values(status=str(to), resolved_at=at)
    )
    if result.rowcount != 1:
        # The row is locked by the caller, so this is a bug, not a race.
        raise IllegalActivationTransition(f"activation {stored.id} changed under its lock")
    moved = _stored(conn.execute(select(activation).where(activation.c.id == stored.id)).one())
    # The resolution's event, with the activation as its GET shows it (the hold already
    # resolved by the caller, or by the ledger on its own). Imported here: the view module
    # reads this one's types.
    from kassa.spending import views

    hold = holds.get_hold(conn, moved.hold_id)
    views.emit(conn, _view(moved, hold, at), at)
    return moved


def _locked(
    conn: Connection, account: CustomerAccount, activation_id: uuid.UUID
) -> tuple[_Stored, Hold]:
    """Lock the activation and its hold, and settle the stored status to the hold's."""
    stored = _row(conn, account, activation_id, for_update=True)
    # Lock the hold too: the holds API could otherwise resolve it between here and our move.
    hold = holds.get_hold(conn, stored.hold_id, for_update=True)
    followed = FOLLOWS_HOLD[hold.status]
    if stored.status is ActivationStatus.PENDING and followed is not ActivationStatus.PENDING:
        stored = _advance(conn, stored, followed, hold.resolved_at or hold.created_at)
    return stored, hold


def settle_resolved(conn: Connection, *, now: datetime, limit: int = 500) -> int:
    """Store the implied status of up to `limit` pending activations whose hold was resolved or
    whose window ended; return how many. Rows being settled elsewhere are skipped (PostgreSQL)."""
    rows = conn.execute(
        select(activation)
        .join(ledger_hold, ledger_hold.c.id == activation.c.hold_id)
        .where(
            activation.c.status == str(ActivationStatus.PENDING),
            or_(
                ledger_hold.c.status != str(HoldStatus.PENDING),
                activation.c.expires_at <= now,
            ),
        )
        .order_by(activation.c.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=activation)
    ).all()
    for row in rows:
        stored = _stored(row)
        hold = holds.get_hold(conn, stored.hold_id)
        status, resolved_at = _implied(stored, hold, now)
        _advance(conn, stored, status, resolved_at or now)
    return len(rows)


def _claim(
    conn: Connection, request: Request | None, now: datetime
) -> Claim | StoredOutcome | None:
    return None if request is None else idempotency.claim(conn, request, now)


def _replayed(
    conn: Connection,
    account: CustomerAccount,
    stored_outcome: StoredOutcome,
    now: datetime,
) -> Activation:
    try:
        activation_id = stored_outcome.resource_uuid
    except HoldExpired as expired:
        raise ActivationExpired(expired.detail) from None
    return get(conn, account, activation_id, now=now)


def _expired(conn: Connection, claimed: Claim | None, stored: _Stored) -> ActivationExpired:
    """The `activation_expired` refusal, stored first under the caller's key (as `hold_expired`;
    see the module docstring)."""
    detail = (
        f"activation {stored.id} expired at {stored.expires_at:%Y-%m-%d %H:%M:%S}Z without "
        "fulfilment; its price is returned to the balance"
    )
    if claimed is not None:
        idempotency.complete_refused(conn, claimed, HoldExpired(detail))
    # Recorded: raised after the expiry was written (or stored under the key), which stands.
    return ActivationExpired(detail).record()


def _refuse_resolved(conn: Connection, claimed: Claim | None, stored: _Stored) -> None:
    """Refuse any move of an activation that is no longer pending."""
    when = f"{stored.resolved_at:%Y-%m-%d %H:%M:%S}Z" if stored.resolved_at else "earlier"
    if stored.status is ActivationStatus.FULFILLED:
        raise ActivationFulfilled(
            f"activation {stored.id} was fulfilled at {when}; it is final and not refundable"
        )
    if stored.status is ActivationStatus.CANCELLED:
        raise ActivationCancelled(
            f"activation {stored.id} was cancelled at {when}; its price was returned"
        )
    if stored.status is ActivationStatus.EXPIRED:
        raise _expired(conn, claimed, stored)


def reserve(
    conn: Connection,
    account: CustomerAccount,
    *,
    price: Money,
    now: datetime,
    request: Request | None,
    window: timedelta = DEFAULT_WINDOW,
    description: str | None = None,
    actor: str | None = None,
) -> Activation:
    """Reserve `price` from the account's balance until `now + window`."""
    if price.asset != USD or not price.is_positive:
        raise InvalidActivation(f"an activation's price is a positive USD amount, got {price}")
    if not timedelta(seconds=1) <= window <= MAX_WINDOW or window.microseconds:
        raise InvalidActivation(
            f"an activation's window is 1 to {int(MAX_WINDOW.total_seconds())} whole seconds"
        )
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidActivation(
            f"an activation's description has at most {MAX_DESCRIPTION_LENGTH} characters"
        )
    claimed = _claim(conn, request, now)
    if isinstance(claimed, StoredOutcome):
        return _replayed(conn, account, claimed, now)
    ensure_may_spend(conn, account, claimed)
    activation_id = uuid.uuid4()
    try:
        hold = holds.create_hold(
            conn,
            debit_account_id=account.ledger_account_id,
            credit_account_id=house.revenue(conn, USD, now).id,
            amount=price,
            now=now,
            request=None,
            expires_at=now + window,
            memo=f"activation {activation_id}" + (f": {description}" if description else ""),
            actor=actor,
        )
    except (InsufficientFunds, AccountFrozen) as refused:
        if claimed is not None:
            idempotency.complete_refused(conn, claimed, refused)
        raise
    conn.execute(
        insert(activation).values(
            id=activation_id,
            customer_account_id=account.id,
            hold_id=hold.id,
            price=price.amount,
            window_seconds=int(window.total_seconds()),
            status=str(ActivationStatus.PENDING),
            description=description,
            actor=actor,
            created_at=now,
            expires_at=now + window,
        )
    )
    if claimed is not None:
        idempotency.complete(conn, claimed, OK, str(activation_id), None)
    return get(conn, account, activation_id, now=now)


def cancel(
    conn: Connection,
    account: CustomerAccount,
    activation_id: uuid.UUID,
    *,
    now: datetime,
    request: Request | None,
) -> Activation:
    """Void the hold: the price returns to the balance at once. Only before the window ends."""
    claimed = _claim(conn, request, now)
    if isinstance(claimed, StoredOutcome):
        return _replayed(conn, account, claimed, now)
    stored, hold = _locked(conn, account, activation_id)
    _refuse_resolved(conn, claimed, stored)
    if stored.expires_at <= now:
        # Too late to cancel: it expired. The sweeper expires the hold (not a void), so the
        # ledger records how the funds really came back.
        expired = _advance(conn, stored, ActivationStatus.EXPIRED, stored.expires_at)
        raise _expired(conn, claimed, expired)
    holds.void_hold(conn, hold.id, now=now, request=None)
    _advance(conn, stored, ActivationStatus.CANCELLED, now)
    if claimed is not None:
        idempotency.complete(conn, claimed, OK, str(stored.id), None)
    return get(conn, account, stored.id, now=now)


def fulfil(
    conn: Connection,
    account: CustomerAccount,
    activation_id: uuid.UUID,
    *,
    now: datetime,
    request: Request | None,
    actor: str | None = None,
) -> Activation:
    """Capture the hold in full: the price is charged and the activation is final."""
    claimed = _claim(conn, request, now)
    if isinstance(claimed, StoredOutcome):
        return _replayed(conn, account, claimed, now)
    stored, hold = _locked(conn, account, activation_id)
    _refuse_resolved(conn, claimed, stored)
    try:
        holds.capture_hold(conn, hold.id, now=now, request=None, actor=actor)
    except HoldExpired:
        # The ledger judges the window: it refused the capture and expired the hold on the
        # spot, returning the funds now rather than at the next sweep.
        expired = _advance(conn, stored, ActivationStatus.EXPIRED, stored.expires_at)
        raise _expired(conn, claimed, expired) from None
    _advance(conn, stored, ActivationStatus.FULFILLED, now)
    if claimed is not None:
        idempotency.complete(conn, claimed, OK, str(stored.id), None)
    return get(conn, account, stored.id, now=now)
