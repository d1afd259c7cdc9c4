"""Refund and withdrawal requests: their states and the allowed moves between them.

A request is created only when the policy allows it, with its funds already reserved by a
ledger hold (gross USD, from the customer's balance to the payouts clearing account):

    pending_review ─approve→ approved ─(payout worker)→ signed → broadcast → confirmed
          │                     │                                    └──→ failed
          └─reject/cancel→ rejected / cancelled   (cancel also from approved)

Rejection, cancellation and failure void the hold: the funds return to the balance. Moves not
in `TRANSITIONS` raise. The payout worker (a later part) owns the moves after ``approved``.
"""

from __future__ import annotations

from enum import StrEnum

from kassa.errors import Conflict


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
        {RequestStatus.SIGNED, RequestStatus.CANCELLED, RequestStatus.FAILED}
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


class IllegalRequestTransition(Conflict):
    code = "payout_request_not_pending"
    title = "Request cannot change that way"


def check_transition(old: RequestStatus, new: RequestStatus) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalRequestTransition(f"a {old.value} request cannot become {new.value}")
