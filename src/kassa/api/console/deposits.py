"""Deposits: search by transaction id, address (deposit address or sender) or account.

Each deposit reads as its API view and events carry it (`kassa.deposits.views.deposit_view`):
status and why, confirmations, the USD value credited, and the rate lock it was valued at with
that lock's sources. A reversed deposit shows as ``reversed`` with its reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, or_, select

from kassa.accounts.tables import customer_account
from kassa.api.console.web import PREFIX, Operator, Refused, render
from kassa.api.context import Ctx
from kassa.deposits import records
from kassa.deposits.model import DepositStatus
from kassa.deposits.tables import deposit, deposit_address
from kassa.deposits.views import deposit_view

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 25


def search(
    conn: Connection, text: str, status: DepositStatus | None, offset: int
) -> tuple[list[dict[str, Any]], bool]:
    """Deposits matching `text` (a txid, an address, an account's external id; empty: all),
    newest first, one page from `offset`; and whether more follow."""
    query = (
        select(deposit.c.id, customer_account.c.external_id, deposit_address.c.address)
        .join(customer_account, customer_account.c.id == deposit.c.customer_account_id)
        .join(deposit_address, deposit_address.c.id == deposit.c.deposit_address_id)
    )
    if text:
        query = query.where(
            or_(
                deposit.c.txid == text,
                deposit_address.c.address == text,
                deposit.c.sender == text,
                customer_account.c.external_id == text,
            )
        )
    if status is not None:
        query = query.where(deposit.c.status == status.value)
    rows = conn.execute(
        query.order_by(deposit.c.first_seen_at.desc(), deposit.c.id.desc())
        .offset(offset)
        .limit(PAGE_SIZE + 1)
    ).all()
    found = []
    for row in rows[:PAGE_SIZE]:
        item = records.get(conn, row.id)
        if item is not None:
            found.append(
                {**deposit_view(conn, item, address=row.address), "external_id": row.external_id}
            )
    return found, len(rows) > PAGE_SIZE


@router.get("/deposits")
def deposits_page(
    request: Request,
    session: Operator,
    ctx: Ctx,
    q: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=32)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    chosen = None
    if status:
        try:
            chosen = DepositStatus(status)
        except ValueError:
            raise Refused(422, "Unknown state", f"{status!r} is not a deposit state") from None
    with ctx.database.transaction() as conn:
        found, more = search(conn, q.strip(), chosen, offset)
    return render(
        request,
        "deposits.html",
        session,
        section="deposits",
        deposits=found,
        more=more,
        q=q,
        state=status,
        states=[s.value for s in DepositStatus],
        offset=offset,
        page_size=PAGE_SIZE,
    )
