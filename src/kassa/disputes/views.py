"""A dispute as the API shows it, and the `dispute.*` events.

`dispute_view` is the body of `GET /v1/admin/disputes/{id}` (and of each item of a customer's
`GET /v1/accounts/{id}/disputes`). `kassa.disputes.service` emits ``dispute.opened`` when an
operator opens one and ``dispute.rejected``, ``dispute.accepted`` or ``dispute.charged_back``
when it is resolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection

from kassa.accounts import service as accounts
from kassa.disputes.model import Dispute, DisputeStatus
from kassa.events import outbox
from kassa.events.views import JsonObject, amount, iso, text_id
from kassa.money import USD, Money

EVENT_OF: Mapping[DisputeStatus, str] = {
    DisputeStatus.OPEN: "dispute.opened",
    DisputeStatus.REJECTED: "dispute.rejected",
    DisputeStatus.ACCEPTED: "dispute.accepted",
    DisputeStatus.CHARGED_BACK: "dispute.charged_back",
}


def dispute_view(conn: Connection, item: Dispute) -> JsonObject:
    # Imported here: the service module emits through this one.
    from kassa.disputes import service

    return {
        "id": str(item.id),
        "external_id": accounts.get(conn, item.customer_account_id).external_id,
        "subject": item.subject.value,
        "subject_id": str(item.subject_id),
        "status": item.status.value,
        "reason": item.reason,
        "amount": amount(Money(item.amount_usd, USD)),
        "occurred_at": iso(item.occurred_at),
        "opened_by": item.opened_by,
        "opened_at": iso(item.opened_at),
        "resolved_by": item.resolved_by,
        "resolved_at": iso(item.resolved_at),
        "note": item.note,
        "transaction_id": text_id(item.transaction_id),
        "events": [
            {
                "from_status": None if e.from_status is None else e.from_status.value,
                "to_status": e.to_status.value,
                "actor": e.actor,
                "note": e.note,
                "at": iso(e.at),
            }
            for e in service.events(conn, item.id)
        ],
    }


def emit(conn: Connection, item: Dispute, now: datetime) -> None:
    outbox.record(
        conn,
        type=EVENT_OF[item.status],
        subject_kind="dispute",
        subject_id=item.id,
        data=dispute_view(conn, item),
        at=now,
        account_id=item.customer_account_id,
    )
