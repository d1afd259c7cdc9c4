"""Customer account refusals."""

from kassa.errors import Conflict, InvalidRequest, NotFound


class CustomerAccountNotFound(NotFound):
    code = "account_not_found"
    title = "Account not found"


class CustomerAccountExists(Conflict):
    code = "account_exists"
    title = "Account already exists"


class InvalidExternalId(InvalidRequest):
    code = "invalid_external_id"
    title = "Invalid external id"


class InvalidAccountState(InvalidRequest):
    code = "invalid_account_state"
    title = "Unknown account state"


class InvalidReasonCode(InvalidRequest):
    code = "invalid_reason_code"
    title = "Unknown reason code"


class InvalidStateReason(InvalidRequest):
    code = "invalid_state_reason"
    title = "Invalid state change reason"


class IllegalAccountStateTransition(Conflict):
    code = "illegal_account_state_transition"
    title = "Account state change not allowed"


class AccountSuspended(Conflict):
    """Raised by the operations an account's suspension stops (spending, for one)."""

    code = "account_suspended"
    title = "Account suspended"


class AccountTerminated(Conflict):
    """Raised by the operations an account's termination stops (spending, for one)."""

    code = "account_terminated"
    title = "Account terminated"
