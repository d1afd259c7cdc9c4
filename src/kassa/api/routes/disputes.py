"""Disputes and chargebacks (`kassa.disputes`, docs/disputes.md).

Operators (admin scope) open a dispute about a customer's top-up or activation within the
policy's claim window (409 `dispute_window_closed` with the clause), read them, and resolve each
once: `rejected` (nothing moves), `accepted` (an activation's price returns to the balance) or
`chargeback` (a top-up's credit is taken back, even below zero, which freezes the account).
A customer's key reads its own disputes under `GET /v1/accounts/{external_id}/disputes`; another
customer's account answers 404 like a missing one.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from kassa.api.auth import Admin, Reader, customer_for
from kassa.api.context import Ctx
from kassa.api.idempotency import Idem
from kassa.api.openapi import problems_for
from kassa.api.schemas import AmountOut
from kassa.disputes import service as disputes
from kassa.disputes.errors import DisputeNotFound, DisputeSubjectNotFound, InvalidDispute
from kassa.disputes.model import MAX_TEXT_LENGTH, Dispute, DisputeEvent, DisputeStatus
from kassa.disputes.views import dispute_view
from kassa.ledger.idempotency import Request

router = APIRouter()


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(description="The customer's account", examples=["42"])
    subject: str = Field(description="deposit or activation", examples=["deposit"])
    subject_id: str = Field(description="The deposit's or the activation's id")
    reason: str = Field(
        min_length=1,
        max_length=MAX_TEXT_LENGTH,
        description="The customer's claim, in the operator's words",
        examples=["paid twice by mistake"],
    )


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(
        description="rejected (any), accepted (an activation), chargeback (a deposit)",
        examples=["chargeback"],
    )
    note: str = Field(
        min_length=1,
        max_length=MAX_TEXT_LENGTH,
        description="Why; written on the event and on the ledger entry's memo",
        examples=["processor chargeback received"],
    )


class DisputeEventOut(BaseModel):
    from_status: str | None
    to_status: str
    actor: str
    note: str
    at: datetime

    @classmethod
    def of(cls, event: DisputeEvent) -> DisputeEventOut:
        return cls(
            from_status=None if event.from_status is None else event.from_status.value,
            to_status=event.to_status.value,
            actor=event.actor,
            note=event.note,
            at=event.at,
        )


class DisputeOut(BaseModel):
    id: uuid.UUID
    external_id: str
    subject: str = Field(description="deposit or activation")
    subject_id: uuid.UUID
    status: str = Field(description="open, rejected, accepted or charged_back")
    reason: str
    amount: AmountOut = Field(description="USD at stake: the credited top-up or the price")
    occurred_at: datetime = Field(description="The payment time or the activation time")
    opened_by: str
    opened_at: datetime
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None
    transaction_id: uuid.UUID | None = Field(description="The ledger entry the resolution made")
    events: list[DisputeEventOut] = Field(description="Every step, oldest first")


class DisputeListOut(BaseModel):
    disputes: list[DisputeOut] = Field(description="Newest first, at most 100")


def _out(conn: Connection, item: Dispute) -> DisputeOut:
    """As its events carry it (`kassa.disputes.views`): one view for both."""
    return DisputeOut.model_validate(dispute_view(conn, item))


def _dispute_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise DisputeNotFound(f"dispute {text} does not exist") from None


def _subject_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise DisputeSubjectNotFound(f"{text} is not the id of a deposit or activation") from None


def _status(text: str | None) -> DisputeStatus | None:
    if text is None:
        return None
    try:
        return DisputeStatus(text)
    except ValueError:
        known = ", ".join(s.value for s in DisputeStatus)
        raise InvalidDispute(f"unknown dispute status {text!r}; known: {known}") from None


@router.post(
    "/v1/admin/disputes",
    tags=["admin"],
    description="Open a dispute about a top-up or an activation, within the policy's claim "
    "window (admin).",
    responses=problems_for(
        "account_not_found",
        "dispute_subject_not_found",
        "dispute_subject_not_disputable",
        "dispute_window_closed",
        "dispute_already_open",
        "invalid_dispute",
    ),
    status_code=201,
    response_model=DisputeOut,
)
def open_dispute(body: DisputeIn, caller: Admin, idem: Idem, ctx: Ctx) -> Response:
    subject = disputes.parse_subject(body.subject)
    request = idem.request(
        "disputes.open",
        {
            "external_id": body.external_id,
            "subject": subject.value,
            "subject_id": body.subject_id,
            "reason": body.reason,
        },
    )

    def work(conn: Connection, claimed: Request) -> DisputeOut:
        account = customer_for(conn, caller, body.external_id)
        opened = disputes.open_dispute(
            conn,
            account=account,
            subject=subject,
            subject_id=_subject_id(body.subject_id),
            reason=body.reason,
            actor=caller.actor,
            policy=ctx.payouts.policy,
            now=ctx.clock.now(conn),
        )
        return _out(conn, opened)

    return idem.respond(ctx, request, work, status=201)


@router.post(
    "/v1/admin/disputes/{dispute_id}/resolve",
    tags=["admin"],
    description="Resolve an open dispute once: rejected, accepted (an activation's price "
    "returns) or chargeback (a top-up's credit is taken back, even below zero) (admin).",
    responses=problems_for(
        "dispute_not_found",
        "dispute_already_resolved",
        "dispute_outcome_not_allowed",
        "dispute_subject_not_disputable",
        "insufficient_funds",
        "invalid_dispute",
    ),
    response_model=DisputeOut,
)
def resolve_dispute(
    dispute_id: str, body: ResolutionIn, caller: Admin, idem: Idem, ctx: Ctx
) -> Response:
    outcome = disputes.parse_outcome(body.outcome)
    request = idem.request(
        "disputes.resolve",
        {"dispute_id": dispute_id, "outcome": outcome.value, "note": body.note},
    )

    def work(conn: Connection, claimed: Request) -> DisputeOut:
        resolved = disputes.resolve(
            conn,
            _dispute_id(dispute_id),
            outcome=outcome,
            note=body.note,
            actor=caller.actor,
            policy=ctx.payouts.policy,
            now=ctx.clock.now(conn),
            request=claimed,
        )
        return _out(conn, resolved)

    return idem.respond(ctx, request, work)


@router.get(
    "/v1/admin/disputes",
    tags=["admin"],
    description="Disputes, newest first (at most 100), optionally of one status (admin).",
    responses=problems_for("invalid_dispute"),
)
def list_disputes(caller: Admin, ctx: Ctx, status: str | None = None) -> DisputeListOut:
    wanted = _status(status)
    with ctx.database.transaction() as conn:
        items = disputes.listing(conn, status=wanted)
        return DisputeListOut(disputes=[_out(conn, item) for item in items])


@router.get(
    "/v1/admin/disputes/{dispute_id}",
    tags=["admin"],
    description="One dispute with every step (admin).",
    responses=problems_for("dispute_not_found"),
)
def get_dispute(dispute_id: str, caller: Admin, ctx: Ctx) -> DisputeOut:
    with ctx.database.transaction() as conn:
        return _out(conn, disputes.get(conn, _dispute_id(dispute_id)))


@router.get(
    "/v1/accounts/{external_id}/disputes",
    tags=["accounts"],
    description="The account's disputes, newest first (at most 100).",
    responses=problems_for("account_not_found"),
)
def account_disputes(external_id: str, caller: Reader, ctx: Ctx) -> DisputeListOut:
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, external_id)
        items = disputes.listing(conn, account_id=account.id)
        return DisputeListOut(disputes=[_out(conn, item) for item in items])
