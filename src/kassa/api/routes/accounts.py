"""Customer accounts: create, read, balance, ledger history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import Connection

from kassa.accounts import service as accounts
from kassa.accounts.service import CustomerAccount
from kassa.accounts.views import account_view
from kassa.api.auth import Reader, Writer, customer_for, refuse_if_bound
from kassa.api.context import Ctx
from kassa.api.idempotency import Idem
from kassa.api.openapi import problems_for
from kassa.api.pagination import decode_cursor, encode_cursor
from kassa.api.schemas import (
    AccountCreateIn,
    AccountOut,
    BalanceOut,
    LedgerEntryOut,
    LedgerPageOut,
)
from kassa.api.threads import DatabaseRoute
from kassa.ledger.accounts import get_balance, history
from kassa.ledger.idempotency import Request

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], route_class=DatabaseRoute)


def account_out(conn: Connection, account: CustomerAccount) -> AccountOut:
    """As its events carry it (`kassa.accounts.views`): one view for both."""
    return AccountOut.model_validate(account_view(conn, account))


@router.post(
    "",
    description=(
        "Create a customer account under your own external id, with an empty USD balance."
    ),
    responses=problems_for("account_exists", "invalid_external_id"),
    status_code=201,
    response_model=AccountOut,
)
def create_account(body: AccountCreateIn, caller: Writer, idem: Idem, ctx: Ctx) -> Response:
    refuse_if_bound(caller, "create accounts")
    request = idem.request(
        "accounts.create", {"external_id": body.external_id, "metadata": body.metadata}
    )

    def work(conn: Connection, claimed: Request) -> AccountOut:
        account = accounts.create(
            conn,
            external_id=body.external_id,
            metadata=body.metadata,
            now=ctx.clock.now(conn),
            request=claimed,
        )
        return account_out(conn, account)

    return idem.respond(ctx, request, work, status=201)


@router.get(
    "/{external_id}",
    description="A customer account with its state, metadata and balance.",
    responses=problems_for("account_not_found"),
)
def get_account(external_id: str, caller: Reader, ctx: Ctx) -> AccountOut:
    with ctx.database.transaction() as conn:
        return account_out(conn, customer_for(conn, caller, external_id))


@router.get(
    "/{external_id}/balance",
    description="The account's USD balance: posted, reserved by holds, and available.",
    responses=problems_for("account_not_found"),
)
def get_account_balance(external_id: str, caller: Reader, ctx: Ctx) -> BalanceOut:
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, external_id)
        return BalanceOut.of(get_balance(conn, account.ledger_account_id))


@router.get(
    "/{external_id}/ledger",
    description=("The account's ledger entries, newest first, one page at a time (`next_cursor`)."),
    responses=problems_for("account_not_found", "invalid_cursor"),
)
def get_account_ledger(
    external_id: str,
    caller: Reader,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> LedgerPageOut:
    """Newest first."""
    before = None if cursor is None else decode_cursor(cursor)
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, external_id)
        # One extra row says whether another page exists, so the last page has no cursor.
        rows = history(conn, account.ledger_account_id, limit=limit + 1, before_posting_id=before)
    page = rows[:limit]
    more = len(rows) > limit
    return LedgerPageOut(
        entries=[LedgerEntryOut.of(entry) for entry in page],
        next_cursor=encode_cursor(page[-1].posting_id) if more else None,
    )
