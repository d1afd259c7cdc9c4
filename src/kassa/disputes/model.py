"""The dispute vocabulary: what may be disputed, the statuses and which outcome fits which subject.

A top-up (a credited deposit) is disputed as a *top-up error* and its claim window is
``[claims] topup_error_days``; an activation is disputed as a *dispute* about a purchase and its
window is ``[claims] dispute_days`` (docs/domain.md §11, activkode §7). The outcomes differ by
subject because the money differs: a top-up's credit can be charged back; a fulfilled
activation's captured price can be given back (accepted). Either can be rejected.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kassa.policy.model import ClaimKind

MAX_TEXT_LENGTH = 1000


class Subject(StrEnum):
    DEPOSIT = "deposit"
    ACTIVATION = "activation"


class DisputeStatus(StrEnum):
    OPEN = "open"
    REJECTED = "rejected"
    ACCEPTED = "accepted"
    CHARGED_BACK = "charged_back"


class Outcome(StrEnum):
    REJECTED = "rejected"
    ACCEPTED = "accepted"
    CHARGEBACK = "chargeback"


CLAIM_KIND: Mapping[Subject, ClaimKind] = {
    Subject.DEPOSIT: ClaimKind.TOPUP_ERROR,
    Subject.ACTIVATION: ClaimKind.DISPUTE,
}

#: Outcome → the status it leaves, per subject. Anything else is refused.
RESOLUTIONS: Mapping[Subject, Mapping[Outcome, DisputeStatus]] = {
    Subject.DEPOSIT: {
        Outcome.REJECTED: DisputeStatus.REJECTED,
        Outcome.CHARGEBACK: DisputeStatus.CHARGED_BACK,
    },
    Subject.ACTIVATION: {
        Outcome.REJECTED: DisputeStatus.REJECTED,
        Outcome.ACCEPTED: DisputeStatus.ACCEPTED,
    },
}


@dataclass(frozen=True, slots=True)
class Dispute:
    id: uuid.UUID
    customer_account_id: uuid.UUID
    subject: Subject
    subject_id: uuid.UUID
    status: DisputeStatus
    reason: str
    opened_by: str
    opened_at: datetime
    occurred_at: datetime
    """When the disputed event happened: the payment time or the activation time."""
    amount_usd: int
    """Micro-USD at stake: the credited top-up or the activation's price."""
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None
    transaction_id: uuid.UUID | None
    """The ledger entry the resolution posted (none for a rejection)."""


@dataclass(frozen=True, slots=True)
class DisputeEvent:
    id: int
    dispute_id: uuid.UUID
    from_status: DisputeStatus | None
    to_status: DisputeStatus
    actor: str
    note: str
    at: datetime
