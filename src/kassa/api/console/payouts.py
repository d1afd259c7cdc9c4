"""The review queue, the payouts by state, one request's page, and the decisions on it.

The pages read what the admin API reads (`kassa.api.routes.admin_payouts`: the same summaries and
detail views) and decide through the same service (`kassa.payouts.requests.Payouts.approve`,
``reject``), so an approval here is recorded exactly as one through the API: in
``payout_approval`` and the request's history, with the operator's key as the actor and
Kassa's clock as the time. Two approvals from one key never make two: dual approval needs a
second operator (``payout_already_approved``).

A request's page adds what a reviewer weighs: every rule of the policy decision with its
reason, the money breakdown, the destination and every request paid or asked to it, the
account's velocity against the daily limits, the transactions with their fees charged and paid,
and its events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool

from kassa.accounts import service as accounts
from kassa.accounts.errors import CustomerAccountNotFound
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
from kassa.api.routes.admin_payouts import (
    AdminPayoutOut,
    PayoutSummaryOut,
    PayoutTxOut,
    decode_cursor,
    detail_out,
    encode_cursor,
    summary_out,
)
from kassa.errors import KassaError
from kassa.events.tables import event
from kassa.money import USD, Money, asset
from kassa.payouts import review, store
from kassa.payouts.errors import PayoutRequestNotFound
from kassa.payouts.model import PayoutRequest, RequestStatus
from kassa.payouts.tables import payout_request

router = APIRouter(prefix=PREFIX, include_in_schema=False)

PAGE_SIZE = 25
MAX_REASON = review.MAX_TEXT_LENGTH


@dataclass(frozen=True, slots=True)
class Page:
    items: list[PayoutSummaryOut]
    next_cursor: str | None
    transactions: dict[str, list[PayoutTxOut]]
    """The payout transactions of each listed request (by request id), oldest first."""


def _page(
    ctx: AppContext,
    *,
    status: RequestStatus | None,
    external_id: str | None,
    cursor: str | None,
    oldest_first: bool,
) -> Page:
    after = None if cursor is None else decode_cursor(cursor)
    with ctx.database.transaction() as conn:
        account_id = None
        if external_id:
            account_id = accounts.get_by_external_id(conn, external_id).id
        found = store.search(
            conn,
            status=status,
            customer_account_id=account_id,
            limit=PAGE_SIZE + 1,
            after=after,
            oldest_first=oldest_first,
        )
        page, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
        given = review.approvals(conn, [item.id for item in page])
        owners = {
            item.customer_account_id: accounts.get(conn, item.customer_account_id).external_id
            for item in page
        }
        transactions = {
            str(item.id): [PayoutTxOut.of(tx) for tx in review.transactions(conn, item.id)]
            for item in page
        }
        now = ctx.clock.now(conn)
    return Page(
        [
            summary_out(item, owners[item.customer_account_id], given.get(item.id, []), now)
            for item in page
        ],
        encode_cursor(page[-1]) if more else None,
        transactions,
    )


@router.get("/review")
def review_queue(
    request: Request,
    session: Operator,
    ctx: Ctx,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> HTMLResponse:
    page = _page(
        ctx,
        status=RequestStatus.PENDING_REVIEW,
        external_id=None,
        cursor=cursor,
        oldest_first=True,
    )
    return render(request, "review.html", session, section="review", page=page)


@router.get("/payouts")
def payouts_page(
    request: Request,
    session: Operator,
    ctx: Ctx,
    status: Annotated[str, Query(max_length=32)] = "",
    account: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> HTMLResponse:
    chosen = None
    if status:
        try:
            chosen = RequestStatus(status)
        except ValueError:
            raise Refused(422, "Unknown state", f"{status!r} is not a payout state") from None
    error = None
    try:
        page = _page(
            ctx, status=chosen, external_id=account.strip(), cursor=cursor, oldest_first=False
        )
    except CustomerAccountNotFound:
        page, error = Page([], None, {}), f"No account with external id {account!r}."
    return render(
        request,
        "payouts.html",
        session,
        section="payouts",
        page=page,
        state=status,
        account=account,
        states=[s.value for s in RequestStatus],
        error=error,
    )


# --------------------------------------------------------------------------- one request


@dataclass(frozen=True, slots=True)
class Velocity:
    requests: int
    max_requests: int
    requested: Money
    max_requested: Money


@dataclass(frozen=True, slots=True)
class RequestPage:
    detail: AdminPayoutOut
    destination_history: list[dict[str, Any]]
    paid_before: bool
    velocity: Velocity
    events: list[dict[str, Any]]
    approved_by_me: bool


def _get(conn: Connection, request_id: uuid.UUID) -> PayoutRequest:
    try:
        return store.get(conn, request_id)
    except PayoutRequestNotFound:
        raise Refused(404, "Not found", f"No refund or withdrawal {request_id}.") from None


def _read(ctx: AppContext, request_id: uuid.UUID, session: Session) -> RequestPage:
    with ctx.database.transaction() as conn:
        item = _get(conn, request_id)
    # Outside any transaction, as the admin API does: a preview reads the rates and the chain's
    # fee (only under a policy that prices at approval; None otherwise).
    preview = ctx.payouts.preview_repricing(item)
    with ctx.database.transaction() as conn:
        item = _get(conn, request_id)
        now = ctx.clock.now(conn)
        pending = item.status is RequestStatus.PENDING_REVIEW
        detail = detail_out(conn, item, now, preview if pending else None)
        settings = ctx.payouts.settings.review
        count, used = store.paid_or_open_since(conn, item.customer_account_id, now - timedelta(1))
        return RequestPage(
            detail=detail,
            destination_history=_destination_history(conn, item),
            paid_before=store.paid_before(conn, asset(item.asset), item.destination),
            velocity=Velocity(
                count,
                settings.max_count_per_day,
                used,
                Money.parse(settings.max_usd_per_day, USD),
            ),
            events=_events(conn, item),
            approved_by_me=any(a.actor == session.operator for a in detail.approvals),
        )


def _destination_history(conn: Connection, item: PayoutRequest) -> list[dict[str, Any]]:
    """Every other request to the same address (any account), newest first."""
    rows = conn.execute(
        select(
            payout_request.c.id,
            payout_request.c.kind,
            payout_request.c.status,
            payout_request.c.asset,
            payout_request.c.customer_account_id,
            payout_request.c.created_at,
        )
        .where(payout_request.c.destination == item.destination, payout_request.c.id != item.id)
        .order_by(payout_request.c.created_at.desc())
        .limit(50)
    ).all()
    owners: dict[uuid.UUID, str] = {}
    history = []
    for row in rows:
        if row.customer_account_id not in owners:
            owners[row.customer_account_id] = accounts.get(
                conn, row.customer_account_id
            ).external_id
        history.append(
            {
                "id": str(row.id),
                "kind": row.kind,
                "status": row.status,
                "asset": row.asset,
                "external_id": owners[row.customer_account_id],
                "created_at": row.created_at,
            }
        )
    return history


def _events(conn: Connection, item: PayoutRequest) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(event.c.public_id, event.c.type, event.c.occurred_at, event.c.dispatched_at)
        .where(event.c.subject_kind == item.kind.value, event.c.subject_id == str(item.id))
        .order_by(event.c.seq)
    ).all()
    return [dict(row._mapping) for row in rows]


def _parse_id(request_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(request_id)
    except ValueError:
        raise Refused(404, "Not found", f"No refund or withdrawal {request_id!r}.") from None


def _request_page(
    request: Request,
    session: Session,
    ctx: AppContext,
    request_id: uuid.UUID,
    *,
    error: str | None = None,
    status: int = 200,
    done: str = "",
) -> HTMLResponse:
    found = _read(ctx, request_id, session)
    return render(
        request,
        "payout.html",
        session,
        section="review" if found.detail.status == "pending_review" else "payouts",
        p=found,
        d=found.detail,
        error=error,
        done=done,
        status=status,
        max_reason=MAX_REASON,
    )


@router.get("/payouts/{request_id}")
def payout_page(
    request_id: str,
    request: Request,
    session: Operator,
    ctx: Ctx,
    done: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    return _request_page(request, session, ctx, _parse_id(request_id), done=done)


async def _decide(
    request: Request,
    session: Session,
    ctx: AppContext,
    request_id: uuid.UUID,
    action: str,
    text: str | None,
) -> Response:
    def work() -> None:
        if action == "approve":
            locks = ctx.payouts.approval_locks(request_id)
            with ctx.database.transaction() as conn:
                ctx.payouts.approve(
                    conn, request_id, actor=session.operator, note=text or None, locks=locks
                )
        else:
            with ctx.database.transaction() as conn:
                ctx.payouts.reject(conn, request_id, actor=session.operator, reason=text or "")

    try:
        await run_in_threadpool(work)
    except PayoutRequestNotFound:
        raise Refused(404, "Not found", f"No refund or withdrawal {request_id}.") from None
    except KassaError as error:
        return await run_in_threadpool(
            _request_page,
            request,
            session,
            ctx,
            request_id,
            error=error.detail,
            status=problems.status_for(error),
        )
    return see_other(f"{PREFIX}/payouts/{request_id}?done={action}")


@router.post("/payouts/{request_id}/approve")
async def approve(request_id: str, request: Request, session: Decider, ctx: Ctx) -> Response:
    form = await checked_form(request, session)
    note = form.get("note", "").strip()[:MAX_REASON]
    return await _decide(request, session, ctx, _parse_id(request_id), "approve", note)


@router.post("/payouts/{request_id}/reject")
async def reject(request_id: str, request: Request, session: Decider, ctx: Ctx) -> Response:
    form = await checked_form(request, session)
    reason = form.get("reason", "").strip()
    parsed = _parse_id(request_id)
    if not reason or len(reason) > MAX_REASON:
        return await run_in_threadpool(
            _request_page,
            request,
            session,
            ctx,
            parsed,
            error=f"A rejection needs a reason (1 to {MAX_REASON} characters).",
            status=422,
        )
    return await _decide(request, session, ctx, parsed, "reject", reason)
