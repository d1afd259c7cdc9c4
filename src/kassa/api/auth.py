"""Who is calling: Bearer API keys, scopes, and the per-account fence.

Authentication happens once per request, in `kassa.api.guard.RequestGuard`, before the body is
read: the guard looks the key up in its own short transaction (finished before the route opens
its own; two nested transactions would queue behind each other on SQLite's single writer lock)
and refuses the request with 401 unless the key is live. `authenticated` hands the route the key
the guard found; `bearer` is declared here so that the OpenAPI document names the scheme.

A key bound to a customer account sees only that account and its holds. Anything else answers
404 exactly as if it did not exist — a 403 would confirm to the caller that the other id exists.
Account-wide actions (creating accounts) answer 403 to a bound key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection

from kassa.accounts import service as accounts
from kassa.accounts.errors import CustomerAccountNotFound
from kassa.accounts.service import CustomerAccount
from kassa.api.guard import api_key_of
from kassa.apikeys.errors import Forbidden, Unauthenticated
from kassa.apikeys.service import ApiKey, Scope
from kassa.ledger import holds
from kassa.ledger.errors import HoldNotFound
from kassa.ledger.model import Hold

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="kassa_<prefix>_<secret>",
    description="An API key from `kassa keys create` (or the bootstrap admin key).",
)


def authenticated(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> ApiKey:
    """The key the request guard authenticated (every route needing one is under /v1/)."""
    key = api_key_of(request)
    if key is None:
        raise Unauthenticated("send an API key as 'Authorization: Bearer kassa_…'")
    return key


def require(scope: Scope) -> Callable[[ApiKey], ApiKey]:
    def dependency(key: Annotated[ApiKey, Depends(authenticated)]) -> ApiKey:
        if not key.allows(scope):
            raise Forbidden(f"this API key lacks the {scope.value!r} scope")
        return key

    return dependency


AnyKey = Annotated[ApiKey, Depends(authenticated)]
Reader = Annotated[ApiKey, Depends(require(Scope.ACCOUNTS_READ))]
Writer = Annotated[ApiKey, Depends(require(Scope.ACCOUNTS_WRITE))]
Admin = Annotated[ApiKey, Depends(require(Scope.ADMIN))]


def refuse_if_bound(key: ApiKey, action: str) -> None:
    if key.customer_account_id is not None:
        raise Forbidden(f"a key bound to one customer account cannot {action}")


def customer_for(conn: Connection, key: ApiKey, external_id: str) -> CustomerAccount:
    """The customer account `key` may touch under `external_id`, else account_not_found."""
    missing = CustomerAccountNotFound(f"no account with external id {external_id!r}")
    try:
        account = accounts.get_by_external_id(conn, external_id)
    except CustomerAccountNotFound:
        raise missing from None
    if key.customer_account_id is not None and account.id != key.customer_account_id:
        raise missing
    return account


def hold_for(conn: Connection, key: ApiKey, hold_id: str) -> Hold:
    """The hold `key` may touch, else hold_not_found (malformed ids included)."""
    missing = HoldNotFound(f"hold {hold_id} does not exist")
    try:
        parsed = uuid.UUID(hold_id)
    except ValueError:
        raise missing from None
    try:
        hold = holds.get_hold(conn, parsed)
    except HoldNotFound:
        raise missing from None
    if key.customer_account_id is not None:
        owner = accounts.get(conn, key.customer_account_id)
        # The debit side of a hold is the customer whose funds it reserves; it never changes.
        if hold.debit_account_id != owner.ledger_account_id:
            raise missing
    return hold
