"""Webhook endpoints: create, read, update, disable and enable, rotate the secret, delete.

An endpoint is a URL, an event-type filter (exact types such as ``deposit.credited`` or a
family such as ``deposit.*``; none means every type), a description and optionally one customer
account whose events alone it receives. A key bound to a customer account manages only that
account's endpoints, and the endpoints it creates are bound to it.

The secret (``whsec_…``) is returned by `create` and `rotate` only. It is stored as it is,
because the sender needs it to sign; it is never logged and no read returns it. Rotating keeps
the old secret signing too for ``rotation_overlap_seconds``. Deleting is final for the API (the
endpoint is gone from every listing and answers 404) but keeps the row, so its delivery log
still explains what was sent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from kassa.webhooks.errors import InvalidWebhookEndpoint, WebhookEndpointNotFound
from kassa.webhooks.signing import new_secret
from kassa.webhooks.tables import webhook_delivery, webhook_endpoint
from kassa.webhooks.transport import AddressPolicy

MAX_DESCRIPTION = 500
MAX_FILTERS = 50
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$|^\*$")


class EndpointStatus(StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: uuid.UUID
    url: str
    description: str
    event_types: tuple[str, ...]
    customer_account_id: uuid.UUID | None
    status: EndpointStatus
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Row[Any]) -> Endpoint:
        return cls(
            id=row.id,
            url=row.url,
            description=row.description,
            event_types=tuple(row.event_types.split()),
            customer_account_id=row.customer_account_id,
            status=EndpointStatus(row.status),
            disabled_reason=row.disabled_reason,
            failing_since=row.failing_since,
            previous_secret_expires_at=row.previous_secret_expires_at,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def wants(self, event_type: str, account_id: uuid.UUID | None) -> bool:
        return matches(self.event_types, event_type) and (
            self.customer_account_id is None or self.customer_account_id == account_id
        )


def matches(filters: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint with `filters` wants events of `event_type`."""
    if not filters:
        return True
    for wanted in filters:
        if wanted in ("*", event_type):
            return True
        if wanted.endswith(".*") and event_type.startswith(wanted[:-1]):
            return True
    return False


def parse_filters(event_types: Sequence[str]) -> tuple[str, ...]:
    if len(event_types) > MAX_FILTERS:
        raise InvalidWebhookEndpoint(f"at most {MAX_FILTERS} event types")
    for item in event_types:
        if len(item) > 64 or not EVENT_TYPE.match(item):
            raise InvalidWebhookEndpoint(
                f"{item!r} is not an event type: lower case words joined by dots, such as "
                "deposit.credited, or a family such as deposit.*"
            )
    return tuple(sorted(set(event_types)))


def _description(text: str, what: str = "a description") -> str:
    if len(text) > MAX_DESCRIPTION:
        raise InvalidWebhookEndpoint(f"{what} has at most {MAX_DESCRIPTION} characters")
    if any(ord(c) < 32 and c not in "\t\n" for c in text):
        raise InvalidWebhookEndpoint(f"{what} may not contain control characters")
    return text


def create(
    conn: Connection,
    *,
    url: str,
    event_types: Sequence[str],
    description: str,
    customer_account_id: uuid.UUID | None,
    actor: str,
    now: datetime,
    policy: AddressPolicy,
) -> tuple[Endpoint, str]:
    """A new enabled endpoint and its secret (shown this once)."""
    policy.check_url(url)
    secret = new_secret()
    endpoint_id = uuid.uuid4()
    conn.execute(
        insert(webhook_endpoint).values(
            id=endpoint_id,
            url=url,
            description=_description(description),
            event_types=" ".join(parse_filters(event_types)),
            customer_account_id=customer_account_id,
            status=EndpointStatus.ENABLED.value,
            secret=secret,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
    )
    return get(conn, endpoint_id), secret


def _row(
    conn: Connection, endpoint_id: uuid.UUID, account: uuid.UUID | None, *, lock: bool = False
) -> Row[Any]:
    query = select(webhook_endpoint).where(
        webhook_endpoint.c.id == endpoint_id,
        webhook_endpoint.c.status != EndpointStatus.DELETED.value,
    )
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None or (account is not None and row.customer_account_id != account):
        raise WebhookEndpointNotFound(f"webhook endpoint {endpoint_id} does not exist")
    return row


def get(conn: Connection, endpoint_id: uuid.UUID, *, account: uuid.UUID | None = None) -> Endpoint:
    """The endpoint, if `account` (a bound caller's account, or None for operators) sees it."""
    return Endpoint.of(_row(conn, endpoint_id, account))


def listing(conn: Connection, *, account: uuid.UUID | None = None) -> list[Endpoint]:
    query = (
        select(webhook_endpoint)
        .where(webhook_endpoint.c.status != EndpointStatus.DELETED.value)
        .order_by(webhook_endpoint.c.created_at, webhook_endpoint.c.id)
    )
    if account is not None:
        query = query.where(webhook_endpoint.c.customer_account_id == account)
    return [Endpoint.of(row) for row in conn.execute(query)]


def enabled(conn: Connection) -> list[Endpoint]:
    query = select(webhook_endpoint).where(
        webhook_endpoint.c.status == EndpointStatus.ENABLED.value
    )
    return [Endpoint.of(row) for row in conn.execute(query)]


def update_endpoint(
    conn: Connection,
    endpoint_id: uuid.UUID,
    *,
    now: datetime,
    policy: AddressPolicy,
    account: uuid.UUID | None = None,
    url: str | None = None,
    event_types: Sequence[str] | None = None,
    description: str | None = None,
) -> Endpoint:
    """Change what is given; pending deliveries go to the new URL from their next attempt."""
    _row(conn, endpoint_id, account, lock=True)
    values: dict[str, Any] = {"updated_at": now}
    if url is not None:
        policy.check_url(url)
        values["url"] = url
    if event_types is not None:
        values["event_types"] = " ".join(parse_filters(event_types))
    if description is not None:
        values["description"] = _description(description)
    conn.execute(
        update(webhook_endpoint).where(webhook_endpoint.c.id == endpoint_id).values(values)
    )
    return get(conn, endpoint_id)


def disable(
    conn: Connection,
    endpoint_id: uuid.UUID,
    *,
    reason: str,
    now: datetime,
    account: uuid.UUID | None = None,
) -> Endpoint:
    """No delivery is attempted and no event fanned out to it until it is enabled again; its
    pending deliveries wait."""
    _row(conn, endpoint_id, account, lock=True)
    conn.execute(
        update(webhook_endpoint)
        .where(webhook_endpoint.c.id == endpoint_id)
        .values(
            status=EndpointStatus.DISABLED.value,
            disabled_reason=_description(reason, "a reason"),
            updated_at=now,
        )
    )
    return get(conn, endpoint_id)


def enable(
    conn: Connection, endpoint_id: uuid.UUID, *, now: datetime, account: uuid.UUID | None = None
) -> Endpoint:
    """Deliveries resume: the pending ones are due at once. Events that happened while it was
    disabled were not fanned out to it; replay them (`deliveries.replay`) if they are wanted."""
    row = _row(conn, endpoint_id, account, lock=True)
    if row.status != EndpointStatus.ENABLED.value:
        conn.execute(
            update(webhook_endpoint)
            .where(webhook_endpoint.c.id == endpoint_id)
            .values(
                status=EndpointStatus.ENABLED.value,
                disabled_reason=None,
                failing_since=None,
                updated_at=now,
            )
        )
        conn.execute(
            update(webhook_delivery)
            .where(
                webhook_delivery.c.endpoint_id == endpoint_id,
                webhook_delivery.c.status == "pending",
            )
            .values(next_attempt_at=now, updated_at=now)
        )
    return get(conn, endpoint_id)


def rotate(
    conn: Connection,
    endpoint_id: uuid.UUID,
    *,
    now: datetime,
    overlap_seconds: int,
    account: uuid.UUID | None = None,
) -> tuple[Endpoint, str]:
    """A new secret (shown this once); the current one keeps signing for the overlap."""
    row = _row(conn, endpoint_id, account, lock=True)
    secret = new_secret()
    conn.execute(
        update(webhook_endpoint)
        .where(webhook_endpoint.c.id == endpoint_id)
        .values(
            secret=secret,
            previous_secret=row.secret if overlap_seconds > 0 else None,
            previous_secret_expires_at=(
                now + timedelta(seconds=overlap_seconds) if overlap_seconds > 0 else None
            ),
            updated_at=now,
        )
    )
    return get(conn, endpoint_id), secret


def delete(
    conn: Connection, endpoint_id: uuid.UUID, *, now: datetime, account: uuid.UUID | None = None
) -> Endpoint:
    """Gone for good: nothing more is fanned out or attempted; its pending deliveries fail."""
    _row(conn, endpoint_id, account, lock=True)
    conn.execute(
        update(webhook_endpoint)
        .where(webhook_endpoint.c.id == endpoint_id)
        .values(status=EndpointStatus.DELETED.value, updated_at=now)
    )
    conn.execute(
        update(webhook_delivery)
        .where(
            webhook_delivery.c.endpoint_id == endpoint_id,
            webhook_delivery.c.status == "pending",
        )
        .values(
            status="failed",
            last_error="endpoint deleted",
            next_attempt_at=None,
            claimed_by=None,
            lease_until=None,
            updated_at=now,
        )
    )
    return Endpoint.of(
        conn.execute(select(webhook_endpoint).where(webhook_endpoint.c.id == endpoint_id)).one()
    )


def signing_secrets(row: Row[Any], now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one while
    its overlap lasts."""
    keys = [row.secret]
    expires = row.previous_secret_expires_at
    if row.previous_secret and expires is not None and now < expires:
        keys.append(row.previous_secret)
    return keys
