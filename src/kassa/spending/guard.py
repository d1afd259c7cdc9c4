"""Whether an account may spend (usage and new activations), by its effective state.

Only an active account spends. The refusal names the state, so the host can tell a customer
"your account is suspended" rather than "insufficient funds". A frozen refusal is the ledger's
own `account_frozen`, stored under the caller's idempotency key as the ledger stores it; the
others are not stored, so a retry after the account is reinstated goes through. Settling what
was already reserved (fulfilling or cancelling an open activation) is not new spending and is
not checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import Connection

from kassa.accounts.errors import AccountSuspended, AccountTerminated
from kassa.accounts.service import CustomerAccount
from kassa.accounts.states import AccountState, effective_state
from kassa.errors import KassaError
from kassa.ledger import idempotency
from kassa.ledger.accounts import get_balance
from kassa.ledger.errors import REPLAYABLE, AccountFrozen
from kassa.ledger.idempotency import Claim
from kassa.ledger.model import Balance


def _suspended(account: CustomerAccount) -> KassaError:
    return AccountSuspended(f"account {account.external_id!r} is suspended; it cannot spend")


def _terminated(account: CustomerAccount) -> KassaError:
    return AccountTerminated(f"account {account.external_id!r} is terminated; it cannot spend")


def _frozen(account: CustomerAccount) -> KassaError:
    return AccountFrozen(
        f"account {account.external_id!r} is frozen (by an operator, or by a reversal that "
        "took its balance below zero); it cannot spend"
    )


#: What each state does to spending: None lets it through, otherwise the refusal to raise.
SPENDING_REFUSAL: Mapping[AccountState, Callable[[CustomerAccount], KassaError] | None] = {
    AccountState.ACTIVE: None,
    AccountState.SUSPENDED: _suspended,
    AccountState.TERMINATED: _terminated,
    AccountState.FROZEN: _frozen,
}


def spending_refusal(conn: Connection, account: CustomerAccount) -> KassaError | None:
    """The error that refuses new spending from `account`, or None when it may spend."""
    return refusal_at(account, get_balance(conn, account.ledger_account_id))


def refusal_at(account: CustomerAccount, balance: Balance) -> KassaError | None:
    """`spending_refusal` for the account's ledger balance read by the caller."""
    state = effective_state(AccountState(account.status), balance.frozen)
    refuse = SPENDING_REFUSAL[state]
    return None if refuse is None else refuse(account)


def ensure_may_spend(
    conn: Connection,
    account: CustomerAccount,
    claimed: Claim | None,
    *,
    balance: Balance | None = None,
) -> None:
    """Raise the spending refusal, if any, storing it under `claimed` when it is replayable.
    `balance`: the account's ledger balance if the caller read it already in this unit."""
    if balance is None:
        balance = get_balance(conn, account.ledger_account_id)
    refusal = refusal_at(account, balance)
    if refusal is None:
        return
    if claimed is not None and refusal.code in REPLAYABLE:
        idempotency.complete_refused(conn, claimed, refusal)
    raise refusal
