"""Customer accounts: the list, and one account's page with its money and its history.

The page shows the balance (posted, reserved by holds, available), the pending holds, the
activations, the ledger with each entry's memo (a page at a time), the state with every change
(who, when, why) and the form to change it, the disputes with the forms to open and resolve
them, and the statement of a period as CSV. The forms go through the same services as the
admin API (`kassa.accounts.states.change_state`, `kassa.disputes.service`), so the audit trail
records the operator's key and the time.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool

from kassa.accounts import service as accounts
from kassa.accounts import states
from kassa.accounts.errors import CustomerAccountNotFound
from kassa.accounts.service import CustomerAccount
from kassa.accounts.tables import customer_account
from kassa.api import problems
from kassa.api.console.sessions import Session
from kassa.api.console.web import (
    PREFIX,
    Decider,
    Operator,
    Refused,
    checked_form,
    render,
    see_other,
)
from kassa.api.context import AppContext, Ctx
from kassa.api.pagination import decode_cursor, encode_cursor
from kassa.disputes import service as disputes
from kassa.disputes.model import Outcome, Subject
from kassa.errors import KassaError
from kassa.ledger.accounts import get_balance, history
from kassa.ledger.model import Balance, HistoryEntry
from kassa.ledger.tables import ledger_hold
from kassa.money import USD, Money, asset
from kassa.reports.csvout import write_csv
from kassa.reports.period import parse_period
from kassa.reports.statement import statement
from kassa.spending.tables import activation

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 50


@router.get("/accounts")
def accounts_page(
    request: Request,
    session: Operator,
    ctx: Ctx,
    q: Annotated[str, Query(max_length=128)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    query = select(customer_account)
    if q.strip():
        query = query.where(customer_account.c.external_id.startswith(q.strip(), autoescape=True))
    with ctx.database.transaction() as conn:
        rows = conn.execute(
            query.order_by(customer_account.c.external_id).offset(offset).limit(PAGE_SIZE + 1)
        ).all()
        listed = [
            (row, get_balance(conn, row.ledger_account_id).available) for row in rows[:PAGE_SIZE]
        ]
    return render(
        request,
        "accounts.html",
        session,
        section="accounts",
        accounts=listed,
        more=len(rows) > PAGE_SIZE,
        q=q,
        offset=offset,
        page_size=PAGE_SIZE,
    )


@dataclass(frozen=True, slots=True)
class AccountPage:
    account: CustomerAccount
    balance: Balance
    effective_state: str
    holds: list[Any]
    activations: Sequence[Any]
    ledger: list[HistoryEntry]
    next_cursor: str | None
    state_changes: list[states.StateChange]
    disputes: list[Any]
    month: str
    """This month in the operator's time zone: the statement form's default period."""


def _find(conn: Connection, external_id: str) -> CustomerAccount:
    try:
        return accounts.get_by_external_id(conn, external_id)
    except CustomerAccountNotFound:
        raise Refused(404, "Not found", f"No account with external id {external_id!r}.") from None


def _read(ctx: AppContext, external_id: str, cursor: str | None, zone: ZoneInfo) -> AccountPage:
    before = None if cursor is None else decode_cursor(cursor)
    with ctx.database.transaction() as conn:
        account = _find(conn, external_id)
        balance = get_balance(conn, account.ledger_account_id)
        entries = history(
            conn, account.ledger_account_id, limit=PAGE_SIZE + 1, before_posting_id=before
        )
        page = list(entries[:PAGE_SIZE])
        return AccountPage(
            account=account,
            balance=balance,
            effective_state=states.effective_state(
                states.AccountState(account.status), balance.frozen
            ).value,
            holds=[
                (row, Money(int(row.amount), asset(row.asset)))
                for row in conn.execute(
                    select(ledger_hold)
                    .where(
                        ledger_hold.c.debit_account_id == account.ledger_account_id,
                        ledger_hold.c.status == "pending",
                    )
                    .order_by(ledger_hold.c.created_at.desc())
                )
            ],
            activations=conn.execute(
                select(activation)
                .where(activation.c.customer_account_id == account.id)
                .order_by(activation.c.created_at.desc())
                .limit(50)
            ).all(),
            ledger=page,
            next_cursor=encode_cursor(page[-1].posting_id) if len(entries) > PAGE_SIZE else None,
            state_changes=list(states.history(conn, account.id)),
            disputes=[
                (item, Money(item.amount_usd, USD))
                for item in disputes.listing(conn, account_id=account.id)
            ],
            month=ctx.clock.now(conn).astimezone(zone).strftime("%Y-%m"),
        )


def _account_page(
    request: Request,
    session: Session,
    ctx: AppContext,
    external_id: str,
    *,
    cursor: str | None = None,
    error: str | None = None,
    done: str = "",
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "account.html",
        session,
        section="accounts",
        a=_read(ctx, external_id, cursor, session.zone),
        error=error,
        done=done,
        status=status,
        account_states=[s.value for s in states.AccountState],
        reason_codes=[c.value for c in states.ReasonCode],
        outcomes=[o.value for o in Outcome],
        subjects=[s.value for s in Subject],
        cursor=cursor,
    )


@router.get("/accounts/{external_id}")
def account_page(
    external_id: str,
    request: Request,
    session: Operator,
    ctx: Ctx,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    done: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    return _account_page(request, session, ctx, external_id, cursor=cursor, done=done)


async def _act(
    request: Request,
    session: Session,
    ctx: AppContext,
    external_id: str,
    done: str,
    work: Callable[[], None],
) -> Response:
    """Run an operator action; on a refusal show the account page with the reason."""
    try:
        await run_in_threadpool(work)
    except KassaError as error:
        return await run_in_threadpool(
            partial(
                _account_page,
                request,
                session,
                ctx,
                external_id,
                error=error.detail,
                status=problems.status_for(error),
            )
        )
    return see_other(f"{PREFIX}/accounts/{external_id}?done={done}")


@router.post("/accounts/{external_id}/state")
async def change_state(external_id: str, request: Request, session: Decider, ctx: Ctx) -> Response:
    form = await checked_form(request, session)

    def work() -> None:
        with ctx.database.transaction() as conn:
            account = _find(conn, external_id)
            states.change_state(
                conn,
                account.id,
                to=states.parse_state(form.get("state", "")),
                reason_code=states.parse_reason_code(form.get("reason_code", "")),
                reason=form.get("reason", ""),
                actor=session.operator,
                now=ctx.clock.now(conn),
                request=None,
            )

    return await _act(request, session, ctx, external_id, "state", work)


def _uuid(text: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise Refused(422, "Invalid id", f"{text!r} is not a {what} id.") from None


@router.post("/accounts/{external_id}/disputes")
async def open_dispute(external_id: str, request: Request, session: Decider, ctx: Ctx) -> Response:
    form = await checked_form(request, session)
    subject_id = _uuid(form.get("subject_id", ""), "top-up or activation")

    def work() -> None:
        with ctx.database.transaction() as conn:
            disputes.open_dispute(
                conn,
                account=_find(conn, external_id),
                subject=disputes.parse_subject(form.get("subject", "")),
                subject_id=subject_id,
                reason=form.get("reason", ""),
                actor=session.operator,
                policy=ctx.payouts.policy,
                now=ctx.clock.now(conn),
            )

    return await _act(request, session, ctx, external_id, "dispute", work)


@router.post("/accounts/{external_id}/disputes/{dispute_id}/resolve")
async def resolve_dispute(
    external_id: str, dispute_id: str, request: Request, session: Decider, ctx: Ctx
) -> Response:
    form = await checked_form(request, session)
    parsed = _uuid(dispute_id, "dispute")

    def work() -> None:
        with ctx.database.transaction() as conn:
            if disputes.get(conn, parsed).customer_account_id != _find(conn, external_id).id:
                raise Refused(404, "Not found", f"No dispute {dispute_id} on this account.")
            disputes.resolve(
                conn,
                parsed,
                outcome=disputes.parse_outcome(form.get("outcome", "")),
                note=form.get("note", ""),
                actor=session.operator,
                policy=ctx.payouts.policy,
                now=ctx.clock.now(conn),
                request=None,
            )

    return await _act(request, session, ctx, external_id, "resolved", work)


@router.get("/accounts/{external_id}/statement.csv")
def statement_csv(
    external_id: str,
    session: Operator,
    ctx: Ctx,
    period: Annotated[str, Query(max_length=32)],
) -> Response:
    try:
        chosen = parse_period(period, session.time_zone)
    except KassaError as error:
        raise Refused(422, "Invalid period", error.detail) from None
    out = io.StringIO()
    with ctx.database.transaction() as conn:
        # The rows stream from the database: written out inside the transaction.
        write_csv(statement(conn, _find(conn, external_id).external_id, chosen), out)
    name = f"statement-{external_id}-{chosen.label}.csv".replace("/", "_").replace('"', "")
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
