"""A refund or withdrawal request as the API shows it, and the `refund.*` / `withdrawal.*`
events.

`payout_view` is the body of `GET /v1/refunds/{id}` and `GET /v1/withdrawals/{id}`: the request,
its decision record and its history. `emit` writes one event with that view as ``data``; the
subject kind is the request's kind (``refund`` or ``withdrawal``), so a refund's events read
``refund.requested`` … ``refund.confirmed``. `kassa.payouts.store` emits on creation and on
every move into a status listed in `EVENT_OF`; signing (``signed``) and the worker sending a
dead transaction back for a new signature are internal steps and emit nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from kassa.accounts import service as accounts
from kassa.events import outbox
from kassa.events.views import JsonObject, amount, iso, text_id
from kassa.payouts import store
from kassa.payouts.model import PayoutRequest, RequestStatus

REQUESTED = "requested"
REPRICED = "repriced"
"""Fired by `kassa.payouts.store.reprice` with the request's re-priced figures."""

EVENT_OF: Mapping[RequestStatus, str] = {
    RequestStatus.APPROVED: "approved",
    RequestStatus.REJECTED: "rejected",
    RequestStatus.CANCELLED: "cancelled",
    RequestStatus.BROADCAST: "broadcast",
    RequestStatus.CONFIRMED: "confirmed",
    RequestStatus.FAILED: "failed",
}
"""The event a move into each status fires (``<kind>.<event>``)."""

EVENTS = (REQUESTED, *EVENT_OF.values(), REPRICED)
"""Every event of a request, in the order of a life that goes through them all."""


def payout_view(conn: Connection, item: PayoutRequest) -> JsonObject:
    owner = accounts.get(conn, item.customer_account_id)
    return {
        "id": str(item.id),
        "kind": item.kind.value,
        "status": item.status.value,
        "external_id": owner.external_id,
        "deposit_id": text_id(item.deposit_id),
        "asset": item.asset,
        "destination": item.destination,
        "gross": amount(item.gross_usd),
        "fees": amount(item.fees_usd),
        "network_fee": amount(item.network_fee_usd),
        "net": amount(item.net_usd),
        "net_native": amount(item.net_native),
        "network_fee_native": (
            None if item.network_fee_native is None else amount(item.network_fee_native)
        ),
        "rate_lock_id": str(item.rate_lock_id),
        "quote_id": text_id(item.quote_id),
        "policy": item.policy,
        "needs_review": item.needs_review,
        "review_due_at": iso(item.review_due_at),
        "created_at": iso(item.created_at),
        "decision": item.decision,
        "history": [_step(step) for step in store.events(conn, item.id)],
    }


def _step(step: Mapping[str, Any]) -> JsonObject:
    """One history entry as `PayoutEventOut` reads it: a ``repriced`` entry carries its
    committed and re-priced figures as ``repricing``."""
    return {
        "from": step["from"],
        "to": step["to"],
        "actor": step["actor"],
        "reason": step["reason"],
        "at": iso(step["at"]),
        "kind": step["kind"],
        "repricing": step["detail"],
    }


def emit(conn: Connection, item: PayoutRequest, event: str, now: datetime) -> None:
    """Write ``<kind>.<event>`` (``withdrawal.broadcast``, …) about `item` as it is now."""
    if event not in EVENTS:
        raise ValueError(f"{event!r} is not an event of a refund or withdrawal")
    outbox.record(
        conn,
        type=f"{item.kind.value}.{event}",
        subject_kind=item.kind.value,
        subject_id=item.id,
        data=payout_view(conn, item),
        at=now,
        account_id=item.customer_account_id,
    )
