"""An activation as the API shows it, and the `activation.*` events.

`activation_view` is the body of `GET /v1/accounts/{id}/activations/{activation_id}`.
`kassa.spending.activations` emits ``activation.fulfilled``, ``activation.cancelled`` and
``activation.expired`` when the stored status resolves (a fulfilment, a cancellation, the
worker's sweep or a late attempt that finds the window over); reserving one emits nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection

from kassa.events import outbox
from kassa.events.views import JsonObject, amount, iso
from kassa.spending.activations import Activation, ActivationStatus

EVENT_OF: Mapping[ActivationStatus, str] = {
    ActivationStatus.FULFILLED: "activation.fulfilled",
    ActivationStatus.CANCELLED: "activation.cancelled",
    ActivationStatus.EXPIRED: "activation.expired",
}


def activation_view(item: Activation) -> JsonObject:
    return {
        "id": str(item.id),
        "status": item.status.value,
        "refunded": item.refunded,
        "price": amount(item.price),
        "window_seconds": int(item.window.total_seconds()),
        "hold_id": str(item.hold_id),
        "description": item.description,
        "created_at": iso(item.created_at),
        "expires_at": iso(item.expires_at),
        "resolved_at": iso(item.resolved_at),
    }


def emit(conn: Connection, item: Activation, now: datetime) -> None:
    outbox.record(
        conn,
        type=EVENT_OF[item.status],
        subject_kind="activation",
        subject_id=item.id,
        data=activation_view(item),
        at=now,
        account_id=item.customer_account_id,
    )
