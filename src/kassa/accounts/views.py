"""A customer account as `GET /v1/accounts/{id}` shows it, and its `account.state_changed`
event.

The state that applies (`effective_state`) changes when an operator moves the account and when
money takes its balance below zero (a reorg reversal or a chargeback: frozen) or covers it
again. Operator moves emit from `kassa.accounts.states.change_state`; the money movements that
can freeze or unfreeze an account take `effective(…)` before they post and call
`emit_if_changed(…)` after, so a usage posting (which never goes below zero) emits nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from kassa.accounts.service import CustomerAccount
from kassa.accounts.states import AccountState, effective_state
from kassa.events import outbox
from kassa.events.views import JsonObject, amount, iso
from kassa.ledger.accounts import get_balance
from kassa.ledger.model import Balance

STATE_CHANGED = "account.state_changed"


def balance_view(balance: Balance) -> JsonObject:
    return {
        "asset": balance.asset.code.value,
        "posted": amount(balance.posted),
        "pending": amount(balance.pending_outgoing),
        "available": amount(balance.available),
        "frozen": balance.frozen,
    }


def account_view(conn: Connection, account: CustomerAccount) -> JsonObject:
    """The account with the state that applies and its balance (`GET /v1/accounts/{id}`)."""
    balance = get_balance(conn, account.ledger_account_id)
    return {
        "id": str(account.id),
        "external_id": account.external_id,
        "status": effective_state(AccountState(account.status), balance.frozen).value,
        "metadata": dict(account.metadata),
        "created_at": iso(account.created_at),
        "balance": balance_view(balance),
    }


def effective(conn: Connection, account: CustomerAccount) -> AccountState:
    """The state that applies now (read before a movement that may freeze or unfreeze): one
    balance read."""
    frozen = get_balance(conn, account.ledger_account_id).frozen
    return effective_state(AccountState(account.status), frozen)


def emit_state_changed(conn: Connection, account: CustomerAccount, now: datetime) -> None:
    outbox.record(
        conn,
        type=STATE_CHANGED,
        subject_kind="account",
        subject_id=account.id,
        data=account_view(conn, account),
        at=now,
        account_id=account.id,
    )


def emit_if_changed(
    conn: Connection, account: CustomerAccount, before: AccountState, now: datetime
) -> None:
    """Emit `account.state_changed` when the state that applies is no longer `before` (a money
    movement changes the balance, not the stored state, so `account` is still current).

    The account row is not locked here: two transactions changing one account's state at the
    same moment give it the same ``seq``, and the outbox's unique index fails the second, which
    rolls back and is retried like any failed unit of work."""
    if effective(conn, account) is not before:
        emit_state_changed(conn, account, now)
