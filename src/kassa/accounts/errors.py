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
