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
    frozen_by_balance = get_balance(conn, account.ledger_account_id).frozen
    state = effective_state(AccountState(account.status), frozen_by_balance)
    refuse = SPENDING_REFUSAL[state]
    return None if refuse is None else refuse(account)


def ensure_may_spend(conn: Connection, account: CustomerAccount, claimed: Claim | None) -> None:
    """Raise the spending refusal, if any, storing it under `claimed` when it is replayable."""
    refusal = spending_refusal(conn, account)
    if refusal is None:
        return
    if claimed is not None and refusal.code in REPLAYABLE:
        idempotency.complete_refused(conn, claimed, refusal)
    raise refusal
