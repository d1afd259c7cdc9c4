"""Account states: active, suspended, terminated, frozen — changed by an operator, with a reason.

Design
------
* The state lives in `customer_account.status`. Every change appends an `account_state_change`
  row (who, when, why, from → to) in the same transaction; that history is append-only
  (database triggers refuse UPDATE and DELETE).
* Allowed moves are the one table `TRANSITIONS`; anything else raises. `terminated` is final:
  the account may still be paid out under the policy, but it never spends again.
* A change carries a machine-readable `reason_code` next to the operator's free text: policies
  decide on the code (a refund after a `serious_breach` differs from one after a `geographic`
  block), people read the text.
* Frozen is also derived: an account a reversal took below zero is frozen by the ledger whatever
  state it is in (`effective_state`). An operator may freeze an account outright as well.
* What a state allows is decided elsewhere: spending by `kassa.spending.guard`, refunds and
  withdrawals by the policy engine. This module only records the state.
* The account row is locked before it changes, so two operators' changes queue and each records
  the true `from` state. The change is idempotent under the caller's key like any money movement.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from kassa.accounts.errors import (
    CustomerAccountNotFound,
    IllegalAccountStateTransition,
    InvalidAccountState,
    InvalidReasonCode,
    InvalidStateReason,
)
from kassa.accounts.tables import account_state_change, customer_account
from kassa.ledger import idempotency
from kassa.ledger.errors import LedgerInvariantBroken
from kassa.ledger.idempotency import OK, Request, StoredOutcome

MAX_REASON_LENGTH = 1000


class AccountState(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    FROZEN = "frozen"


class ReasonCode(StrEnum):
    """Why an operator changed the state. Policies read these (the same vocabulary as
    `kassa.policy.model.StateReason`); add codes, never rename them."""

    VIOLATION = "violation"
    """Terms or public offer violated."""
    SERIOUS_BREACH = "serious_breach"
    """Serious breach of acceptable use."""
    GEOGRAPHIC = "geographic"
    """Geographic restrictions violated."""
    NEGATIVE_BALANCE = "negative_balance"
    """A reversed deposit left the balance below zero (the usual reason for ``frozen``)."""
    CUSTOMER_REQUEST = "customer_request"
    """The customer closed or paused the account."""
    OTHER = "other"
    """None of the above (a reinstatement, say); the free-text reason says what."""


#: Every allowed move. Terminated is final; nothing moves to the state it is already in.
TRANSITIONS: Mapping[AccountState, frozenset[AccountState]] = {
    AccountState.ACTIVE: frozenset(
        {AccountState.SUSPENDED, AccountState.FROZEN, AccountState.TERMINATED}
    ),
    AccountState.SUSPENDED: frozenset(
        {AccountState.ACTIVE, AccountState.FROZEN, AccountState.TERMINATED}
    ),
    AccountState.FROZEN: frozenset(
        {AccountState.ACTIVE, AccountState.SUSPENDED, AccountState.TERMINATED}
    ),
    AccountState.TERMINATED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class StateChange:
    id: int
    """Increases with every change: the order of the history."""
    customer_account_id: uuid.UUID
    from_state: AccountState
    to_state: AccountState
    reason_code: ReasonCode
    reason: str
    actor: str
    changed_at: datetime


def parse_state(text: str) -> AccountState:
    try:
        return AccountState(text)
    except ValueError:
        known = ", ".join(s.value for s in AccountState)
        raise InvalidAccountState(f"unknown account state {text!r}; known: {known}") from None


def parse_reason_code(text: str) -> ReasonCode:
    try:
        return ReasonCode(text)
    except ValueError:
        known = ", ".join(r.value for r in ReasonCode)
        raise InvalidReasonCode(f"unknown reason code {text!r}; known: {known}") from None


def effective_state(stored: AccountState, balance_frozen: bool) -> AccountState:
    """The state that applies: the stored one, except that an active account whose balance a
    reversal took below zero is frozen until credits cover it."""
    if stored is AccountState.ACTIVE and balance_frozen:
        return AccountState.FROZEN
    return stored


def _change(row: Row[Any]) -> StateChange:
    return StateChange(
        id=row.id,
        customer_account_id=row.customer_account_id,
        from_state=AccountState(row.from_state),
        to_state=AccountState(row.to_state),
        reason_code=ReasonCode(row.reason_code),
        reason=row.reason,
        actor=row.actor,
        changed_at=row.changed_at,
    )


def get_change(conn: Connection, change_id: int) -> StateChange:
    row = conn.execute(
        select(account_state_change).where(account_state_change.c.id == change_id)
    ).one()
    return _change(row)


def history(conn: Connection, account_id: uuid.UUID, *, limit: int = 100) -> Sequence[StateChange]:
    """The account's state changes, newest first."""
    rows = conn.execute(
        select(account_state_change)
        .where(account_state_change.c.customer_account_id == account_id)
        .order_by(account_state_change.c.id.desc())
        .limit(limit)
    )
    return [_change(row) for row in rows]


def latest_change(conn: Connection, account_id: uuid.UUID) -> StateChange | None:
    """The change that put the account in its current state; None if it never changed."""
    changes = history(conn, account_id, limit=1)
    return changes[0] if changes else None


def change_state(
    conn: Connection,
    account_id: uuid.UUID,
    *,
    to: AccountState,
    reason_code: ReasonCode,
    reason: str,
    actor: str,
    now: datetime,
    request: Request | None,
) -> StateChange:
    """Move the account to `to` and record who, when and why. Returns the recorded change (the
    stored one on a replay of `request`)."""
    if not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise InvalidStateReason(
            f"a state change needs a reason of 1 to {MAX_REASON_LENGTH} characters"
        )
    if not actor.strip():
        raise InvalidStateReason("a state change names its actor")
    claimed = None if request is None else idempotency.claim(conn, request, now)
    if isinstance(claimed, StoredOutcome):
        # A state change stores no refusals, so a stored outcome is the change it made.
        if claimed.outcome != OK or claimed.resource_id is None:
            raise LedgerInvariantBroken(f"state change stored as {claimed.outcome!r}")
        return get_change(conn, int(claimed.resource_id))
    # Lock first: a concurrent change waits here and then sees this one's result as its `from`.
    current = conn.execute(
        select(customer_account.c.status)
        .where(customer_account.c.id == account_id)
        .with_for_update()
    ).scalar_one_or_none()
    if current is None:
        raise CustomerAccountNotFound(f"account {account_id} does not exist")
    from_state = AccountState(current)
    if to not in TRANSITIONS[from_state]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[from_state])) or "none: it is final"
        raise IllegalAccountStateTransition(
            f"account {account_id} is {from_state}; it cannot become {to} (allowed: {allowed})"
        )
    conn.execute(
        update(customer_account).where(customer_account.c.id == account_id).values(status=str(to))
    )
    change_id: int = conn.execute(
        insert(account_state_change)
        .values(
            customer_account_id=account_id,
            from_state=str(from_state),
            to_state=str(to),
            reason_code=str(reason_code),
            reason=reason,
            actor=actor,
            changed_at=now,
        )
        .returning(account_state_change.c.id)
    ).scalar_one()
    # The state that applies, as the account's GET shows it after this change (imported here:
    # the view module reads this one's states).
    from kassa.accounts import service, views

    views.emit_state_changed(conn, service.get(conn, account_id), now)
    if claimed is not None:
        idempotency.complete(conn, claimed, OK, str(change_id), None)
    return get_change(conn, change_id)
