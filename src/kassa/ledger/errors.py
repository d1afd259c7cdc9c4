"""Ledger refusals. Each has a stable code; the API maps codes to HTTP statuses."""

from __future__ import annotations

from kassa.errors import Conflict, InvalidRequest, KassaError, NotFound


class InsufficientFunds(KassaError):
    code = "insufficient_funds"
    title = "Insufficient funds"


class AccountFrozen(KassaError):
    code = "account_frozen"
    title = "Account frozen"


class AccountNotFound(NotFound):
    code = "ledger_account_not_found"
    title = "Ledger account not found"


class TransactionNotFound(NotFound):
    code = "transaction_not_found"
    title = "Transaction not found"


class HoldNotFound(NotFound):
    code = "hold_not_found"
    title = "Hold not found"


class HoldAlreadyResolved(Conflict):
    code = "hold_already_resolved"
    title = "Hold already resolved"


class HoldExpired(Conflict):
    code = "hold_expired"
    title = "Hold expired"


class CaptureExceedsHold(InvalidRequest):
    code = "capture_exceeds_hold"
    title = "Capture exceeds hold"


class UnbalancedTransaction(InvalidRequest):
    code = "unbalanced_transaction"
    title = "Unbalanced transaction"


class AlreadyReversed(Conflict):
    code = "already_reversed"
    title = "Transaction already reversed"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"
    title = "Idempotency key reused with a different request"


class InvalidIdempotencyKey(InvalidRequest):
    code = "invalid_idempotency_key"
    title = "Invalid idempotency key"


class LedgerInvariantBroken(KassaError):
    """A bug or tampering, never a user error: the ledger refuses to continue."""

    code = "ledger_invariant_broken"
    title = "Ledger invariant broken"


#: Refusals that are stored under an idempotency key and replayed on retries.
REPLAYABLE: dict[str, type[KassaError]] = {
    cls.code: cls
    for cls in (
        InsufficientFunds,
        AccountFrozen,
        HoldAlreadyResolved,
        HoldExpired,
        CaptureExceedsHold,
        AlreadyReversed,
    )
}


def register_replayable(error: type[KassaError]) -> type[KassaError]:
    """Let another package store one of its refusals under an idempotency key (a class
    decorator): a retry with the same key then gets the same refusal back."""
    REPLAYABLE[error.code] = error
    return error
