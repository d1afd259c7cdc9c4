"""Deliveries: the fan-out of new events, the delivery log, redelivery and replay.

Fan-out (`dispatch`) keeps the write path of a state change to the one INSERT of its event:
a loop claims undispatched events (``dispatched_at IS NULL``, SKIP LOCKED on PostgreSQL so
several workers pass each other by), creates one pending delivery per enabled endpoint whose
filter wants the event, and stamps ``dispatched_at``, all in one transaction. An endpoint
created (or enabled) later does not receive older events, except by `replay`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from kassa.events.tables import event
from kassa.webhooks import endpoints
from kassa.webhooks.endpoints import Endpoint
from kassa.webhooks.errors import (
    EventNotFound,
    InvalidWebhookEndpoint,
    WebhookDeliveryNotFound,
)
from kassa.webhooks.tables import webhook_attempt, webhook_delivery, webhook_endpoint

MAX_LISTED = 100


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    endpoint_id: uuid.UUID
    event_id: str
    """The event's public id: the ``webhook-id`` of every attempt."""
    event_type: str
    origin: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: Row[Any]) -> Delivery:
        return cls(
            id=row.id,
            endpoint_id=row.endpoint_id,
            event_id=row.public_id,
            event_type=row.type,
            origin=row.origin,
            status=DeliveryStatus(row.status),
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    worker: str
    started_at: datetime
    url: str
    address: str | None
    status_code: int | None
    latency_ms: int
    succeeded: bool
    error: str | None
    response_snippet: str | None


def _new(endpoint_id: uuid.UUID, event_id: int, origin: str, now: datetime) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "origin": origin,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def dispatch(conn: Connection, *, now: datetime, limit: int) -> int:
    """Fan out up to `limit` undispatched events, oldest first; return how many."""
    query = (
        select(event.c.id, event.c.type, event.c.customer_account_id)
        .where(event.c.dispatched_at.is_(None))
        .order_by(event.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if not rows:
        return 0
    targets = endpoints.enabled(conn)
    values = [
        _new(target.id, row.id, "event", now)
        for row in rows
        for target in targets
        if target.wants(row.type, row.customer_account_id)
    ]
    if values:
        conn.execute(insert(webhook_delivery), values)
    conn.execute(
        update(event).where(event.c.id.in_([row.id for row in rows])).values(dispatched_at=now)
    )
    return len(rows)


def _query() -> Any:
    return select(
        webhook_delivery,
        event.c.public_id,
        event.c.type,
    ).join(event, event.c.id == webhook_delivery.c.event_id)


def _fenced(query: Any, account: uuid.UUID | None) -> Any:
    if account is None:
        return query
    return query.join(
        webhook_endpoint, webhook_endpoint.c.id == webhook_delivery.c.endpoint_id
    ).where(webhook_endpoint.c.customer_account_id == account)


def listing(
    conn: Connection,
    *,
    account: uuid.UUID | None = None,
    endpoint_id: uuid.UUID | None = None,
    event_id: str | None = None,
    status: DeliveryStatus | None = None,
    before: int | None = None,
    limit: int = MAX_LISTED,
) -> list[Delivery]:
    """Deliveries newest first, by endpoint, event and status (a bound caller's only)."""
    query = _fenced(_query(), account)
    if endpoint_id is not None:
        query = query.where(webhook_delivery.c.endpoint_id == endpoint_id)
    if event_id is not None:
        query = query.where(event.c.public_id == event_id)
    if status is not None:
        query = query.where(webhook_delivery.c.status == status.value)
    if before is not None:
        query = query.where(webhook_delivery.c.id < before)
    query = query.order_by(webhook_delivery.c.id.desc()).limit(min(limit, MAX_LISTED))
    return [Delivery.of(row) for row in conn.execute(query)]


def get(
    conn: Connection, delivery_id: int, *, account: uuid.UUID | None = None
) -> tuple[Delivery, list[Attempt]]:
    """One delivery with every attempt, oldest first."""
    row = conn.execute(
        _fenced(_query(), account).where(webhook_delivery.c.id == delivery_id)
    ).first()
    if row is None:
        raise WebhookDeliveryNotFound(f"webhook delivery {delivery_id} does not exist")
    attempts = [
        Attempt(
            number=a.number,
            worker=a.worker,
            started_at=a.started_at,
            url=a.url,
            address=a.address,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            succeeded=bool(a.succeeded),
            error=a.error,
            response_snippet=a.response_snippet,
        )
        for a in conn.execute(
            select(webhook_attempt)
            .where(webhook_attempt.c.delivery_id == delivery_id)
            .order_by(webhook_attempt.c.id)
        )
    ]
    return Delivery.of(row), attempts


def _event(conn: Connection, public_id: str, account: uuid.UUID | None) -> Row[Any]:
    row = conn.execute(select(event).where(event.c.public_id == public_id)).first()
    if row is None or (account is not None and row.customer_account_id != account):
        raise EventNotFound(f"event {public_id} does not exist")
    return row


def redeliver(
    conn: Connection,
    event_id: str,
    *,
    now: datetime,
    endpoint_id: uuid.UUID | None = None,
    account: uuid.UUID | None = None,
) -> list[Delivery]:
    """Send one event again (same body, same ``webhook-id``: the event's id): to `endpoint_id`,
    or to every enabled endpoint (that the caller sees) whose filter wants it. Returns the new
    deliveries."""
    row = _event(conn, event_id, account)
    if endpoint_id is not None:
        target = endpoints.get(conn, endpoint_id, account=account)
        if target.customer_account_id not in (None, row.customer_account_id):
            raise InvalidWebhookEndpoint(
                f"endpoint {target.id} receives only its customer account's events"
            )
        targets: Sequence[Endpoint] = [target]
    else:
        targets = [
            e
            for e in endpoints.enabled(conn)
            if e.wants(row.type, row.customer_account_id)
            and (account is None or e.customer_account_id == account)
        ]
    ids = [
        conn.execute(
            insert(webhook_delivery)
            .values(_new(target.id, row.id, "redeliver", now))
            .returning(webhook_delivery.c.id)
        ).scalar_one()
        for target in targets
    ]
    return [get(conn, ident)[0] for ident in ids]


def replay(
    conn: Connection,
    endpoint_id: uuid.UUID,
    *,
    since: datetime,
    now: datetime,
    account: uuid.UUID | None = None,
) -> int:
    """Every event that occurred at or after `since` and that the endpoint's filter wants,
    delivered to it again (with the event's own ``webhook-id``); return how many. Events not yet
    fanned out are left to the fan-out, which delivers them anyway."""
    target = endpoints.get(conn, endpoint_id, account=account)
    if target.status is not endpoints.EndpointStatus.ENABLED:
        raise InvalidWebhookEndpoint(f"endpoint {target.id} is disabled; enable it first")
    rows = conn.execute(
        select(event.c.id, event.c.type, event.c.customer_account_id)
        .where(event.c.occurred_at >= since, event.c.dispatched_at.is_not(None))
        .order_by(event.c.id)
    ).all()
    values = [
        _new(target.id, row.id, "replay", now)
        for row in rows
        if target.wants(row.type, row.customer_account_id)
    ]
    for start in range(0, len(values), 1000):
        conn.execute(insert(webhook_delivery), values[start : start + 1000])
    return len(values)
