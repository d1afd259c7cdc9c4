"""Refund and withdrawal requests: their states, the allowed moves, and the request as read.

A request is created only when the policy allows it, with its funds already reserved by a
ledger hold (gross USD, from the customer's balance to the payouts clearing account):

    pending_review ─approve→ approved ─(payout worker)→ signed → broadcast → confirmed
          │                     │                                    └──→ failed
          └─reject/cancel→ rejected / cancelled   (reject and cancel also from approved)

A request waits in ``pending_review`` when it has review reasons (`ReviewReason`: the policy
asked, the amount is above the review threshold, the destination was never paid before); it
becomes ``approved`` once ``approvals_required`` different operators approved it (see
`kassa.payouts.review`). Rejection, cancellation and failure void the hold: the funds return to
the balance. Once signed, a request can no longer be rejected or cancelled: the coins may
already be on their way. Moves not in `TRANSITIONS` raise. The payout worker owns the moves
after ``approved``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Row

from kassa.errors import Conflict
from kassa.money import USD, Money, asset
from kassa.policy import FeeCharge


class RequestKind(StrEnum):
    REFUND = "refund"
    WITHDRAWAL = "withdrawal"


class RequestStatus(StrEnum):
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    SIGNED = "signed"
    BROADCAST = "broadcast"
    CONFIRMED = "confirmed"
    FAILED = "failed"


TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.PENDING_REVIEW: frozenset(
        {RequestStatus.APPROVED, RequestStatus.REJECTED, RequestStatus.CANCELLED}
    ),
    RequestStatus.APPROVED: frozenset(
        {
            RequestStatus.SIGNED,
            RequestStatus.REJECTED,
            RequestStatus.CANCELLED,
            RequestStatus.FAILED,
        }
    ),
    # Back to approved only when the chain proved the signed transaction dead (it can never be
    # included): the worker then signs a new one.
    RequestStatus.SIGNED: frozenset(
        {RequestStatus.BROADCAST, RequestStatus.FAILED, RequestStatus.APPROVED}
    ),
    RequestStatus.BROADCAST: frozenset(
        {RequestStatus.CONFIRMED, RequestStatus.FAILED, RequestStatus.APPROVED}
    ),
    RequestStatus.REJECTED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
    RequestStatus.CONFIRMED: frozenset(),
    RequestStatus.FAILED: frozenset(),
}

OPEN = frozenset(
    {
        RequestStatus.PENDING_REVIEW,
        RequestStatus.APPROVED,
        RequestStatus.SIGNED,
        RequestStatus.BROADCAST,
    }
)
"""Requests whose funds are still reserved and may yet be paid."""

PAID_OR_OPEN = OPEN | {RequestStatus.CONFIRMED}
"""Requests that count against a top-up (one refund per top-up, refunded so far)."""


FEE_ABOVE_QUOTE = "network fee above the quote"
"""How an approved payout's ``wait_reason`` begins when the chain asks a network fee above the
configured factor of its quote (stable; the rest of the reason is for people)."""


class IllegalRequestTransition(Conflict):
    code = "payout_request_not_pending"
    title = "Request cannot change that way"


def check_transition(old: RequestStatus, new: RequestStatus) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalRequestTransition(f"a {old.value} request cannot become {new.value}")


# --------------------------------------------------------------------------- the request


class ReviewCode(StrEnum):
    """Why a request waits for an operator (stable codes; the detail is for people)."""

    POLICY = "policy"
    """The policy asks for a review (of every request, or in the account's state)."""
    ABOVE_THRESHOLD = "above_threshold"
    """The gross amount is above ``[payouts.review] threshold_usd``."""
    ABOVE_DUAL_APPROVAL = "above_dual_approval"
    """The gross amount is above ``dual_approval_usd`` (only listed when that is set below
    ``threshold_usd``, so such a request still waits for its two approvals)."""
    NEW_DESTINATION = "new_destination"
    """Nothing was ever paid to the destination on its chain."""


@dataclass(frozen=True, slots=True)
class ReviewReason:
    code: ReviewCode
    detail: str

    def as_record(self) -> dict[str, str]:
        return {"code": self.code.value, "detail": self.detail}


def parse_reasons(text: str | None, needs_review: bool) -> tuple[ReviewReason, ...]:
    """The stored JSON list; requests made before reasons were stored (NULL) that needed a
    review could only have needed it because the policy said so."""
    if text is None:
        if needs_review:
            return (ReviewReason(ReviewCode.POLICY, "the policy asks for an operator's review"),)
        return ()
    return tuple(
        ReviewReason(ReviewCode(item["code"]), str(item["detail"])) for item in json.loads(text)
    )


def reasons_json(reasons: tuple[ReviewReason, ...]) -> str:
    return json.dumps([reason.as_record() for reason in reasons])


@dataclass(frozen=True, slots=True)
class PayoutRequest:
    """One refund or withdrawal request as stored (a `payout_request` row)."""

    id: uuid.UUID
    kind: RequestKind
    customer_account_id: uuid.UUID
    deposit_id: uuid.UUID | None
    asset: str
    destination: str
    status: RequestStatus
    policy: str
    gross_usd: Money
    fees_usd: Money
    network_fee_usd: Money
    net_usd: Money
    network_fee_native: Money | None
    net_native: Money
    rate_lock_id: uuid.UUID
    hold_id: uuid.UUID
    decision: dict[str, Any]
    needs_review: bool
    """It waited (or waits) for an operator: it has review reasons."""
    review_due_at: datetime | None
    requested_by: str
    actor: str
    created_at: datetime
    updated_at: datetime
    fee_charge: FeeCharge
    """How much of the network fee the customer bears (the policy's mode, for re-pricing)."""
    flat_fee_usd: Money
    """The flat-fee part of ``fees_usd``."""
    review_reasons: tuple[ReviewReason, ...]
    approvals_required: int
    wait_reason: str | None
    failure_reason: str | None
    settled_at: datetime | None
    execution_rate_lock_id: uuid.UUID | None = None
    """The payout-time rate lock the real network fee was priced at, once signed."""
    fee_approved_by: str | None = None
    quote_id: uuid.UUID | None = None
    """The quote whose figures it committed (requests made before quotes were stored: None)."""
    """The operator who let it pay a network fee above its quote, at the house's cost."""


def request_from_row(row: Row[Any]) -> PayoutRequest:
    fee_asset = row.network_fee_asset
    return PayoutRequest(
        id=row.id,
        kind=RequestKind(row.kind),
        customer_account_id=row.customer_account_id,
        deposit_id=row.deposit_id,
        asset=row.asset,
        destination=row.destination,
        status=RequestStatus(row.status),
        policy=row.policy,
        gross_usd=Money(row.gross_usd, USD),
        fees_usd=Money(row.fees_usd, USD),
        network_fee_usd=Money(row.network_fee_usd, USD),
        net_usd=Money(row.net_usd, USD),
        network_fee_native=(
            None if fee_asset is None else Money(row.network_fee_native, asset(fee_asset))
        ),
        net_native=Money(row.net_native, asset(row.asset)),
        rate_lock_id=row.rate_lock_id,
        hold_id=row.hold_id,
        decision=json.loads(row.decision),
        needs_review=bool(row.needs_review),
        review_due_at=row.review_due_at,
        requested_by=row.requested_by,
        actor=row.actor,
        created_at=row.created_at,
        updated_at=row.updated_at,
        fee_charge=FeeCharge(row.fee_charge),
        flat_fee_usd=Money(row.flat_fee_usd, USD),
        review_reasons=parse_reasons(row.review_reasons, bool(row.needs_review)),
        approvals_required=int(row.approvals_required),
        wait_reason=row.wait_reason,
        failure_reason=row.failure_reason,
        settled_at=row.settled_at,
        execution_rate_lock_id=row.execution_rate_lock_id,
        fee_approved_by=row.fee_approved_by,
        quote_id=row.quote_id,
    )
