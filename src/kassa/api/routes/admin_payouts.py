"""Operators' review of refunds and withdrawals (admin scope).

``GET /v1/admin/payouts`` lists requests — ``?status=pending_review`` is the review queue — with
why each waits (its review reasons), the approvals so far and how many it needs, the amounts,
the destination and its age; pages are opaque cursors (``next_cursor``). ``GET …/{id}`` adds the
policy decision, the history, and the transactions the payout worker signed for it (txid,
status, fee). ``POST …/{id}/approve`` records the calling key's approval (``{note?}``); with
enough approvals from different keys the request is ``approved`` and the worker sends it.
Under a policy that prices at approval (``pricing = "at_approval"``) the approval that makes it
approved prices it again at fresh rate locks and the chain's fee, taken before the transaction
(`kassa.payouts.repricing`): its answer carries ``repricing`` (committed and re-priced figures),
and the review views carry ``repricing_preview`` — what approving now would commit.
``POST …/{id}/approve-fee`` (``{note?}``) lets an approved payout that waits on a network fee
above its quote (``wait_reason`` "network fee above the quote: …") pay it at the house's cost.
``POST …/{id}/reject`` (``{reason}``) refuses a request that is pending review or approved but
not yet signed, and its reserved funds return to the balance. The actor recorded is the API
key (``api-key:<name>``), as for every other operator action.

Refusals: ``404 payout_request_not_found``; ``409 payout_request_not_pending`` (wrong state,
e.g. approving an approved request or rejecting a signed one); ``409 payout_already_approved``
(the same key approving twice: a second approval must come from another operator);
``409 payout_repricing_refused`` (re-priced now, the policy would pay nothing; nothing
changed, the problem's ``repricing`` shows the figures). A retried
approve or reject with the same Idempotency-Key gets the first answer back and records nothing
more; ``GET`` shows the current state.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from kassa.accounts import service as accounts
from kassa.api.auth import Admin
from kassa.api.context import Ctx
from kassa.api.errors import InvalidCursor
from kassa.api.idempotency import Idem
from kassa.api.openapi import problems_for
from kassa.api.routes.payouts import PayoutRequestOut, request_out
from kassa.api.schemas import AmountOut, RepricingOut
from kassa.clock import as_utc
from kassa.ledger.idempotency import Request
from kassa.payouts import repricing, review, store
from kassa.payouts.model import PayoutRequest, RequestStatus
from kassa.payouts.review import Approval, PayoutTransaction
from kassa.policy import Repricing

router = APIRouter(prefix="/v1/admin/payouts", tags=["payout review"])


class ReviewReasonOut(BaseModel):
    code: str = Field(examples=["new_destination", "above_threshold", "policy"])
    detail: str


class ApprovalOut(BaseModel):
    actor: str
    note: str | None
    at: datetime

    @classmethod
    def of(cls, approval: Approval) -> ApprovalOut:
        return cls(actor=approval.actor, note=approval.note, at=approval.at)


class PayoutTxOut(BaseModel):
    id: str
    chain: str
    txid: str
    status: str = Field(description="signed, broadcast, confirmed, failed or dead")
    amount: AmountOut = Field(description="Paid to this request's destination")
    fee: AmountOut = Field(description="The most the transaction can cost")
    fee_paid: AmountOut | None = Field(description="What the chain charged, once known")
    replaces_id: str | None
    broadcast_at: datetime | None
    last_error: str | None
    created_at: datetime

    @classmethod
    def of(cls, tx: PayoutTransaction) -> PayoutTxOut:
        return cls(
            id=str(tx.id),
            chain=tx.chain,
            txid=tx.txid,
            status=tx.status,
            amount=AmountOut.of(tx.amount_native),
            fee=AmountOut.of(tx.fee_native),
            fee_paid=None if tx.fee_paid_native is None else AmountOut.of(tx.fee_paid_native),
            replaces_id=None if tx.replaces_id is None else str(tx.replaces_id),
            broadcast_at=tx.broadcast_at,
            last_error=tx.last_error,
            created_at=tx.created_at,
        )


class ReviewFields(BaseModel):
    review_reasons: list[ReviewReasonOut] = Field(description="Why it waits (or waited)")
    approvals: list[ApprovalOut]
    approvals_required: int
    age_seconds: int = Field(description="Since the request was made")
    wait_reason: str | None = Field(description="Why an approved payout is not sent yet")
    failure_reason: str | None


_PREVIEW = (
    "Under a policy that prices at approval (pricing = at_approval), while it waits for review: "
    "what approving now would commit, at the current rate and fee, next to the committed "
    "figures (null otherwise)"
)


class PayoutSummaryOut(ReviewFields):
    id: str
    kind: str
    status: str
    external_id: str
    asset: str
    destination: str
    gross: AmountOut
    fees: AmountOut
    network_fee: AmountOut
    net: AmountOut
    net_native: AmountOut
    review_due_at: datetime | None
    created_at: datetime
    repricing_preview: RepricingOut | None = Field(description=_PREVIEW)


class AdminPayoutOut(PayoutRequestOut, ReviewFields):
    fee_charge: str = Field(
        description="Network fee the customer bears: all, beyond_flat_fee, none"
    )
    settled_at: datetime | None
    fee_approved_by: str | None = Field(
        description="The operator who let it pay a network fee above its quote (house's cost)"
    )
    transactions: list[PayoutTxOut]
    repricing: RepricingOut | None = Field(
        description="Its re-pricing at approval, once approved under pricing = at_approval: "
        "the committed and the re-priced figures (the history's repriced entry)"
    )
    repricing_preview: RepricingOut | None = Field(description=_PREVIEW)


class PayoutPageOut(BaseModel):
    requests: list[PayoutSummaryOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, description="Recorded; the customer may ask")


# --------------------------------------------------------------------------- cursors

_CURSOR_VERSION = "r1:"


def encode_cursor(item: PayoutRequest) -> str:
    text = f"{_CURSOR_VERSION}{item.created_at.isoformat()}|{item.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    invalid = InvalidCursor("cursor is not one this API returned; start again without it")
    if len(cursor) > 128:
        raise invalid
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not text.startswith(_CURSOR_VERSION):
            raise invalid
        at, ident = text.removeprefix(_CURSOR_VERSION).split("|")
        return as_utc(datetime.fromisoformat(at)), uuid.UUID(ident)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None


# --------------------------------------------------------------------------- views


def _review_fields(item: PayoutRequest, given: list[Approval], now: datetime) -> dict[str, Any]:
    return ReviewFields(
        review_reasons=[
            ReviewReasonOut(code=r.code.value, detail=r.detail) for r in item.review_reasons
        ],
        approvals=[ApprovalOut.of(a) for a in given],
        approvals_required=item.approvals_required,
        age_seconds=max(0, int((now - item.created_at).total_seconds())),
        wait_reason=item.wait_reason,
        failure_reason=item.failure_reason,
    ).model_dump()


def preview_out(preview: Repricing | None) -> RepricingOut | None:
    return None if preview is None else RepricingOut.model_validate(repricing.record(preview))


def summary_out(
    item: PayoutRequest,
    external_id: str,
    given: list[Approval],
    now: datetime,
    preview: Repricing | None = None,
) -> PayoutSummaryOut:
    return PayoutSummaryOut(
        id=str(item.id),
        kind=item.kind.value,
        status=item.status.value,
        external_id=external_id,
        asset=item.asset,
        destination=item.destination,
        gross=AmountOut.of(item.gross_usd),
        fees=AmountOut.of(item.fees_usd),
        network_fee=AmountOut.of(item.network_fee_usd),
        net=AmountOut.of(item.net_usd),
        net_native=AmountOut.of(item.net_native),
        review_due_at=item.review_due_at,
        created_at=item.created_at,
        repricing_preview=preview_out(preview),
        **_review_fields(item, given, now),
    )


def detail_out(
    conn: Connection, item: PayoutRequest, now: datetime, preview: Repricing | None = None
) -> AdminPayoutOut:
    base = request_out(conn, item)
    given = review.approvals(conn, [item.id]).get(item.id, [])
    repriced = [e.repricing for e in base.history if e.kind == store.REPRICED]
    return AdminPayoutOut(
        **base.model_dump(),
        **_review_fields(item, given, now),
        fee_charge=item.fee_charge.value,
        settled_at=item.settled_at,
        fee_approved_by=item.fee_approved_by,
        transactions=[PayoutTxOut.of(tx) for tx in review.transactions(conn, item.id)],
        repricing=repriced[-1] if repriced else None,
        repricing_preview=preview_out(preview),
    )


# --------------------------------------------------------------------------- routes


@router.get(
    "",
    description="Refund and withdrawal requests for review, a page at a time (admin).",
    responses=problems_for("account_not_found", "invalid_cursor"),
)
def list_payouts(
    _caller: Admin,
    ctx: Ctx,
    status: Annotated[
        RequestStatus | None, Query(description="pending_review for the review queue")
    ] = None,
    external_id: Annotated[str | None, Query(description="Only this customer's")] = None,
    order: Annotated[
        str, Query(pattern="^(newest|oldest)$", description="newest first, or oldest first")
    ] = "newest",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> PayoutPageOut:
    after = None if cursor is None else decode_cursor(cursor)
    with ctx.database.transaction() as conn:
        account_id = None
        if external_id is not None:
            account_id = accounts.get_by_external_id(conn, external_id).id
        # One extra row says whether another page exists, so the last page has no cursor.
        found = store.search(
            conn,
            status=status,
            customer_account_id=account_id,
            limit=limit + 1,
            after=after,
            oldest_first=order == "oldest",
        )
        page, more = found[:limit], len(found) > limit
        given = review.approvals(conn, [item.id for item in page])
        owners: dict[uuid.UUID, str] = {}
        for item in page:
            if item.customer_account_id not in owners:
                owner = accounts.get(conn, item.customer_account_id)
                owners[item.customer_account_id] = owner.external_id
        now = ctx.clock.now(conn)
    # Outside the transaction: a preview reads the rates and the chain's fee.
    previews = {item.id: ctx.payouts.preview_repricing(item) for item in page}
    return PayoutPageOut(
        requests=[
            summary_out(
                item,
                owners[item.customer_account_id],
                given.get(item.id, []),
                now,
                previews[item.id],
            )
            for item in page
        ],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


@router.get(
    "/{request_id}",
    description=(
        "A request with its decision, history, approvals and payout transactions (admin)."
    ),
    responses=problems_for("payout_request_not_found"),
)
def get_payout(request_id: uuid.UUID, _caller: Admin, ctx: Ctx) -> AdminPayoutOut:
    with ctx.database.transaction() as conn:
        item = store.get(conn, request_id)
    # Outside any transaction: a preview reads the rates and the chain's fee.
    preview = ctx.payouts.preview_repricing(item)
    with ctx.database.transaction() as conn:
        item = store.get(conn, request_id)
        if item.status is not RequestStatus.PENDING_REVIEW:
            preview = None  # approved or rejected meanwhile: nothing left to preview
        return detail_out(conn, item, ctx.clock.now(conn), preview)


@router.post(
    "/{request_id}/approve",
    description=("Record this key's approval; with enough approvals the payout is sent (admin)."),
    responses=problems_for(
        "payout_request_not_found",
        "payout_request_not_pending",
        "payout_already_approved",
        "payout_repricing_refused",
    ),
    response_model=AdminPayoutOut,
)
def approve_payout(
    request_id: uuid.UUID, body: ApproveIn, caller: Admin, idem: Idem, ctx: Ctx
) -> Response:
    request = idem.request("payouts.approve", {"request_id": str(request_id), "note": body.note})
    replayed = idem.replay(ctx, request)
    if replayed is not None:
        return replayed
    # Re-pricing at approval: its rate locks and the chain's fee, before the transaction.
    locks = ctx.payouts.approval_locks(request_id)

    def work(conn: Connection, _claimed: Request) -> AdminPayoutOut:
        item = ctx.payouts.approve(
            conn, request_id, actor=caller.actor, note=body.note, locks=locks
        )
        return detail_out(conn, item, ctx.clock.now(conn))

    return idem.respond(ctx, request, work)


@router.post(
    "/{request_id}/reject",
    description="Refuse a request not yet signed; its funds return (admin).",
    responses=problems_for("payout_request_not_found", "payout_request_not_pending"),
    response_model=AdminPayoutOut,
)
def reject_payout(
    request_id: uuid.UUID, body: RejectIn, caller: Admin, idem: Idem, ctx: Ctx
) -> Response:
    request = idem.request("payouts.reject", {"request_id": str(request_id), "reason": body.reason})

    def work(conn: Connection, _claimed: Request) -> AdminPayoutOut:
        item = ctx.payouts.reject(conn, request_id, actor=caller.actor, reason=body.reason)
        return detail_out(conn, item, ctx.clock.now(conn))

    return idem.respond(ctx, request, work)


@router.post(
    "/{request_id}/approve-fee",
    description=(
        "Let an approved payout that waits on a network fee above its quote pay that fee at "
        "the house's cost; the customer still receives the committed coins (admin)."
    ),
    responses=problems_for("payout_request_not_found", "payout_request_not_pending"),
    response_model=AdminPayoutOut,
)
def approve_payout_fee(
    request_id: uuid.UUID, body: ApproveIn, caller: Admin, idem: Idem, ctx: Ctx
) -> Response:
    request = idem.request(
        "payouts.approve_fee", {"request_id": str(request_id), "note": body.note}
    )

    def work(conn: Connection, _claimed: Request) -> AdminPayoutOut:
        now = ctx.clock.now(conn)
        item = store.approve_fee(conn, request_id, actor=caller.actor, note_text=body.note, now=now)
        return detail_out(conn, item, now)

    return idem.respond(ctx, request, work)
