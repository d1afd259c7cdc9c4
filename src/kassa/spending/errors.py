"""Spending refusals. Each has a stable code; the API maps codes to HTTP statuses.

Refusals because of the account's state (`account_suspended`, `account_terminated`,
`account_frozen`) are the accounts' and the ledger's own errors, shared with other operations.
"""

from __future__ import annotations

from kassa.errors import Conflict, InvalidRequest, KassaError, NotFound


class InvalidUsageBatch(InvalidRequest):
    """Empty, too large, or naming one event id twice."""

    code = "invalid_usage_batch"
    title = "Invalid usage batch"


class InvalidUsageEvent(InvalidRequest):
    """An event's id, amount or description is unusable."""

    code = "invalid_usage_event"
    title = "Invalid usage event"


class UsageEventConflict(Conflict):
    """An event id already recorded with a different amount or description."""

    code = "usage_event_conflict"
    title = "Usage event id reused with different content"


class InvalidActivation(InvalidRequest):
    code = "invalid_activation"
    title = "Invalid activation"


class ActivationNotFound(NotFound):
    code = "activation_not_found"
    title = "Activation not found"


class ActivationExpired(Conflict):
    """Its window ended without fulfilment; the price goes back to the balance.

    Recorded: raised after the refusal was stored under the caller's idempotency key, sometimes
    together with a consequence (the hold expired on the spot and the funds returned)."""

    code = "activation_expired"
    title = "Activation expired"


class ActivationFulfilled(Conflict):
    """Fulfilled activations are final: they can be neither cancelled nor fulfilled again."""

    code = "activation_fulfilled"
    title = "Activation already fulfilled"


class ActivationCancelled(Conflict):
    code = "activation_cancelled"
    title = "Activation already cancelled"


class IllegalActivationTransition(KassaError):
    """A bug, never a user error: code tried a move the activation state table forbids."""

    code = "illegal_activation_transition"
    title = "Illegal activation transition"
