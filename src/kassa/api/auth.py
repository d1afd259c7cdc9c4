"""Who is calling: Bearer API keys, scopes, and the per-account fence.

Authentication happens once per request, in `kassa.api.guard.RequestGuard`, before the body is
read: the guard looks the key up in its own short transaction (finished before the route opens
its own; two nested transactions would queue behind each other on SQLite's single writer lock)
and refuses the request with 401 unless the key is live. `authenticated` hands the route the key
the guard found; `bearer` is declared here so that the OpenAPI document names the scheme.

A key bound to a customer account sees only that account and what belongs to it (holds,
activations, deposits, refunds, withdrawals). Anything else answers 404 exactly as if it did not
exist — same code, title and detail, the id the caller sent aside: a 403, or a detail naming
the owner, would confirm to the caller that the other id exists and whose it is. Every route
looks objects up through the fences here (`customer_for`, `hold_for`, `sees`). Account-wide
actions (creating accounts) answer 403 to a bound key.

The fences are also where a customer's holds meet the clock: before anything of an account is
read or spent, its holds past their expiry are expired in the same transaction
(`holds.expire_due_holds_of`), so an expired hold reads `expired` and its funds are available
at once, whether or not a sweeper runs. That is why a route's caller is a `Caller`: the key
together with the clock the app runs on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy import Connection

from kassa.accounts import service as accounts
from kassa.accounts.errors import CustomerAccountNotFound
from kassa.accounts.service import CustomerAccount
from kassa.api.context import context_of
from kassa.api.guard import api_key_of
from kassa.apikeys.errors import Forbidden, Unauthenticated
from kassa.apikeys.service import ApiKey, Scope
from kassa.clock import Clock
from kassa.ledger import holds
from kassa.ledger.errors import HoldNotFound
from kassa.ledger.model import Hold, HoldStatus


class _GuardedBearer(HTTPBearer):
    """The ``HTTPBearer`` scheme, as the OpenAPI document declares it, whose value is the key
    `kassa.api.guard.RequestGuard` authenticated the request with (every route needing one is
    under /v1/). It does not read the header again; being the scheme and the key in one, it is
    one dependency for FastAPI to resolve per request instead of two."""

    async def __call__(self, request: Request) -> ApiKey:  # type: ignore[override]
        return _key_of(request)


bearer = _GuardedBearer(
    auto_error=False,
    bearerFormat="kassa_<prefix>_<secret>",
    description="An API key from `kassa keys create` (or the bootstrap admin key).",
    # The name the document has always used (HTTPBearer's default: its class name).
    scheme_name="HTTPBearer",
)


async def authenticated(request: Request) -> ApiKey:
    """The key the request guard authenticated (`AnyKey` is the dependency to declare: it
    names the bearer scheme in the OpenAPI document too).

    The dependencies here only read the request and are ``async``: FastAPI runs a plain
    ``def`` dependency in its thread pool, a hop to another thread and back for a few
    attribute reads."""
    return _key_of(request)


def _key_of(request: Request) -> ApiKey:
    key = api_key_of(request)
    if key is None:
        raise Unauthenticated("send an API key as 'Authorization: Bearer kassa_…'")
    return key


@dataclass(frozen=True, slots=True)
class Caller(ApiKey):
    """The API key of a request, with the clock the fences read "now" from."""

    clock: Clock

    @classmethod
    def of(cls, key: ApiKey, clock: Clock) -> Caller:
        return cls(**{name: getattr(key, name) for name in _KEY_FIELDS}, clock=clock)


_KEY_FIELDS = tuple(f.name for f in fields(ApiKey))


def require(scope: Scope) -> Callable[[Request, ApiKey], Coroutine[None, None, Caller]]:
    """The dependency of a route that needs `scope`: the request's key as a `Caller`.

    It reads the app's clock from the request rather than through `Ctx`: FastAPI resolves
    every dependency in the tree on every request, and that is one fewer."""

    async def dependency(request: Request, key: Annotated[ApiKey, Depends(bearer)]) -> Caller:
        if not key.allows(scope):
            raise Forbidden(f"this API key lacks the {scope.value!r} scope")
        return Caller.of(key, context_of(request).clock)

    return dependency


AnyKey = Annotated[ApiKey, Depends(bearer)]
Reader = Annotated[Caller, Depends(require(Scope.ACCOUNTS_READ))]
Writer = Annotated[Caller, Depends(require(Scope.ACCOUNTS_WRITE))]
Admin = Annotated[Caller, Depends(require(Scope.ADMIN))]
ReportsReader = Annotated[Caller, Depends(require(Scope.REPORTS_READ))]
"""Finance: reconciliation and reports (admin keys have it too)."""


def refuse_if_bound(key: ApiKey, action: str) -> None:
    if key.customer_account_id is not None:
        raise Forbidden(f"a key bound to one customer account cannot {action}")


def sees(key: ApiKey, customer_account_id: uuid.UUID) -> bool:
    """Whether `key` may see objects of the customer account `customer_account_id`."""
    return key.customer_account_id is None or key.customer_account_id == customer_account_id


def customer_for(
    conn: Connection, caller: Caller, external_id: str, *, now: datetime | None = None
) -> CustomerAccount:
    """The customer account `caller` may touch under `external_id`, else account_not_found;
    its due holds are expired first, so what follows reads and spends its true balance.
    `now`: the unit's time if the route read it already (one clock read per unit)."""
    missing = CustomerAccountNotFound(f"no account with external id {external_id!r}")
    try:
        account = accounts.get_by_external_id(conn, external_id)
    except CustomerAccountNotFound:
        raise missing from None
    if not sees(caller, account.id):
        raise missing
    if now is None:
        now = caller.clock.now(conn)
    holds.expire_due_holds_of(conn, account.ledger_account_id, now=now)
    return account


def hold_for(conn: Connection, caller: Caller, hold_id: str) -> Hold:
    """The hold `caller` may touch, else hold_not_found (malformed ids included); a hold past
    its expiry is expired first (with the other due holds of its account)."""
    missing = HoldNotFound(f"hold {hold_id} does not exist")
    try:
        parsed = uuid.UUID(hold_id)
    except ValueError:
        raise missing from None
    try:
        hold = holds.get_hold(conn, parsed)
    except HoldNotFound:
        raise missing from None
    if caller.customer_account_id is not None:
        owner = accounts.get(conn, caller.customer_account_id)
        # The debit side of a hold is the customer whose funds it reserves; it never changes.
        if hold.debit_account_id != owner.ledger_account_id:
            raise missing
    if hold.status is HoldStatus.PENDING and hold.expires_at is not None:
        now = caller.clock.now(conn)
        if hold.expires_at <= now:
            holds.expire_due_holds_of(conn, hold.debit_account_id, now=now)
            return holds.get_hold(conn, parsed)
    return hold
