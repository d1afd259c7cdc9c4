"""Webhook endpoints, the delivery log, redelivery and replay (`kassa.webhooks`, docs/webhooks.md).

Every route needs the ``webhooks:manage`` scope (admin keys have it). An operator's key manages
every endpoint and may bind a new one to a customer account (``external_id``); a key bound to a
customer account manages only that account's endpoints, creates endpoints bound to it, and sees
only their deliveries and that account's events — another account's answer 404 like missing
ones. The secret is in the answers of create and rotate-secret only (and in their idempotent
replays).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from kassa.accounts import service as accounts
from kassa.api.auth import Caller, customer_for, require
from kassa.api.context import Ctx
from kassa.api.idempotency import Idem
from kassa.api.openapi import problems_for
from kassa.apikeys.service import Scope
from kassa.clock import parse_time
from kassa.ledger.idempotency import Request
from kassa.webhooks import deliveries, endpoints
from kassa.webhooks.deliveries import Attempt, Delivery, DeliveryStatus
from kassa.webhooks.endpoints import MAX_DESCRIPTION, MAX_FILTERS, Endpoint
from kassa.webhooks.errors import (
    InvalidWebhookEndpoint,
    WebhookDeliveryNotFound,
    WebhookEndpointNotFound,
)
from kassa.webhooks.transport import MAX_URL_LENGTH, AddressPolicy

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

DELIVERY_PREFIX = "dlv_"
"""Delivery ids read ``dlv_<n>`` in the API and the CLI."""

Manager = Annotated[Caller, Depends(require(Scope.WEBHOOKS_MANAGE))]

EventTypes = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(
        max_length=MAX_FILTERS,
        description="Event types (deposit.credited) or families (deposit.*); empty: every type",
        examples=[["deposit.credited", "withdrawal.*"]],
    ),
]
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="https:// (plain http only for hosts the settings allow)",
        examples=["https://hooks.example.com/kassa"],
    ),
]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION)]


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    event_types: EventTypes = []
    description: Description = ""
    external_id: str | None = Field(
        default=None,
        description="Only this customer account's events (operators; a key bound to an "
        "account always creates endpoints for it)",
    )


class EndpointUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None


class DisableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(max_length=500)] = "disabled by an operator"


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: str = Field(
        description="Every event that occurred at or after this time (ISO 8601 with offset)",
        examples=["2026-12-07T10:00:00Z"],
    )


class RedeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: str | None = Field(
        default=None, description="Only to this endpoint (default: every endpoint that wants it)"
    )


class EndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str] = Field(description="Empty: every type")
    external_id: str | None = Field(description="The customer account it is bound to, if any")
    status: str = Field(description="enabled or disabled")
    disabled_reason: str | None
    failing_since: datetime | None = Field(description="First failed attempt since a success")
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries are signed with the previous secret too"
    )
    created_by: str
    created_at: datetime
    updated_at: datetime


class EndpointWithSecretOut(BaseModel):
    endpoint: EndpointOut
    secret: str = Field(
        description="whsec_…: verifies the webhook-signature header; shown only in this answer",
    )


class EndpointListOut(BaseModel):
    endpoints: list[EndpointOut]


class AttemptOut(BaseModel):
    number: int
    worker: str
    started_at: datetime
    url: str
    address: str | None = Field(description="The address connected to")
    status_code: int | None
    latency_ms: int
    succeeded: bool
    error: str | None = Field(description="Why there was no answer (refused, timeout, …)")
    response_snippet: str | None = Field(description="The start of the answer's body")

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        return cls(
            number=attempt.number,
            worker=attempt.worker,
            started_at=attempt.started_at,
            url=attempt.url,
            address=attempt.address,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            succeeded=attempt.succeeded,
            error=attempt.error,
            response_snippet=attempt.response_snippet,
        )


class DeliveryOut(BaseModel):
    id: str = Field(description="dlv_…", examples=["dlv_42"])
    endpoint_id: uuid.UUID
    event_id: str = Field(description="The event's id: the webhook-id header of every attempt")
    event_type: str
    origin: str = Field(description="event, redeliver or replay")
    status: str = Field(description="pending, succeeded or failed")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, item: Delivery) -> DeliveryOut:
        return cls(
            id=f"{DELIVERY_PREFIX}{item.id}",
            endpoint_id=item.endpoint_id,
            event_id=item.event_id,
            event_type=item.event_type,
            origin=item.origin,
            status=item.status.value,
            attempts=item.attempts,
            next_attempt_at=item.next_attempt_at,
            last_status_code=item.last_status_code,
            last_error=item.last_error,
            created_at=item.created_at,
            delivered_at=item.delivered_at,
        )


class DeliveryDetailOut(DeliveryOut):
    attempt_log: list[AttemptOut] = Field(description="Every attempt, oldest first")


class DeliveryListOut(BaseModel):
    deliveries: list[DeliveryOut] = Field(description="Newest first")
    next_before: str | None = Field(description="Pass as `before` for the next (older) page")


class ReplayOut(BaseModel):
    deliveries: int = Field(description="How many deliveries the replay created")


class RedeliveryOut(BaseModel):
    deliveries: list[DeliveryOut]


def _out(conn: Connection, item: Endpoint) -> EndpointOut:
    owner = item.customer_account_id
    return EndpointOut(
        id=item.id,
        url=item.url,
        description=item.description,
        event_types=list(item.event_types),
        external_id=None if owner is None else accounts.get(conn, owner).external_id,
        status=item.status.value,
        disabled_reason=item.disabled_reason,
        failing_since=item.failing_since,
        previous_secret_expires_at=item.previous_secret_expires_at,
        created_by=item.created_by,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


def _endpoint_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise WebhookEndpointNotFound(f"webhook endpoint {text} does not exist") from None


def _delivery_id(text: str) -> int:
    number = text.removeprefix(DELIVERY_PREFIX)
    if not text.startswith(DELIVERY_PREFIX) or not number.isascii() or not number.isdigit():
        raise WebhookDeliveryNotFound(f"webhook delivery {text} does not exist")
    if len(number) > 18:
        raise WebhookDeliveryNotFound(f"webhook delivery {text} does not exist")
    return int(number)


def _policy(ctx: Ctx) -> AddressPolicy:
    return AddressPolicy.of(ctx.webhooks)


_ENDPOINT_PROBLEMS = ("webhook_endpoint_not_found",)


@router.post(
    "/endpoints",
    description="Create an endpoint; the answer holds its signing secret, shown only here.",
    responses=problems_for("invalid_webhook_endpoint", "account_not_found"),
    status_code=201,
    response_model=EndpointWithSecretOut,
)
def create_endpoint(body: EndpointIn, caller: Manager, idem: Idem, ctx: Ctx) -> Response:
    request = idem.request("webhooks.create", body.model_dump())

    def work(conn: Connection, claimed: Request) -> EndpointWithSecretOut:
        account = caller.customer_account_id
        if body.external_id is not None:
            account = customer_for(conn, caller, body.external_id).id
        made, secret = endpoints.create(
            conn,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
            customer_account_id=account,
            actor=caller.actor,
            now=ctx.clock.now(conn),
            policy=_policy(ctx),
        )
        return EndpointWithSecretOut(endpoint=_out(conn, made), secret=secret)

    return idem.respond(ctx, request, work, status=201)


@router.get(
    "/endpoints",
    description="Every endpoint the key manages (never their secrets).",
    responses=problems_for(),
)
def list_endpoints(caller: Manager, ctx: Ctx) -> EndpointListOut:
    with ctx.database.transaction() as conn:
        items = endpoints.listing(conn, account=caller.customer_account_id)
        return EndpointListOut(endpoints=[_out(conn, item) for item in items])


@router.get(
    "/endpoints/{endpoint_id}",
    description="One endpoint (never its secret).",
    responses=problems_for(*_ENDPOINT_PROBLEMS),
)
def get_endpoint(endpoint_id: str, caller: Manager, ctx: Ctx) -> EndpointOut:
    with ctx.database.transaction() as conn:
        found = endpoints.get(conn, _endpoint_id(endpoint_id), account=caller.customer_account_id)
        return _out(conn, found)


@router.post(
    "/endpoints/{endpoint_id}",
    description="Change an endpoint's URL, event types or description (what is given).",
    responses=problems_for(*_ENDPOINT_PROBLEMS, "invalid_webhook_endpoint"),
    response_model=EndpointOut,
)
def update_endpoint(
    endpoint_id: str, body: EndpointUpdateIn, caller: Manager, idem: Idem, ctx: Ctx
) -> Response:
    request = idem.request("webhooks.update", {"id": endpoint_id, **body.model_dump()})

    def work(conn: Connection, claimed: Request) -> EndpointOut:
        changed = endpoints.update_endpoint(
            conn,
            _endpoint_id(endpoint_id),
            now=ctx.clock.now(conn),
            policy=_policy(ctx),
            account=caller.customer_account_id,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
        )
        return _out(conn, changed)

    return idem.respond(ctx, request, work)


@router.post(
    "/endpoints/{endpoint_id}/disable",
    description="Stop deliveries to an endpoint: nothing is attempted or fanned out to it "
    "until it is enabled; its pending deliveries wait.",
    responses=problems_for(*_ENDPOINT_PROBLEMS),
    response_model=EndpointOut,
)
def disable_endpoint(
    endpoint_id: str, body: DisableIn, caller: Manager, idem: Idem, ctx: Ctx
) -> Response:
    request = idem.request("webhooks.disable", {"id": endpoint_id, "reason": body.reason})

    def work(conn: Connection, claimed: Request) -> EndpointOut:
        changed = endpoints.disable(
            conn,
            _endpoint_id(endpoint_id),
            reason=body.reason,
            now=ctx.clock.now(conn),
            account=caller.customer_account_id,
        )
        return _out(conn, changed)

    return idem.respond(ctx, request, work)


@router.post(
    "/endpoints/{endpoint_id}/enable",
    description="Resume deliveries; pending ones are due at once. Events that happened while "
    "it was disabled come only by replay.",
    responses=problems_for(*_ENDPOINT_PROBLEMS),
    response_model=EndpointOut,
)
def enable_endpoint(endpoint_id: str, caller: Manager, idem: Idem, ctx: Ctx) -> Response:
    request = idem.request("webhooks.enable", {"id": endpoint_id})

    def work(conn: Connection, claimed: Request) -> EndpointOut:
        changed = endpoints.enable(
            conn,
            _endpoint_id(endpoint_id),
            now=ctx.clock.now(conn),
            account=caller.customer_account_id,
        )
        return _out(conn, changed)

    return idem.respond(ctx, request, work)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    description="A new signing secret, shown only in this answer; the old one keeps signing "
    "too for the configured overlap.",
    responses=problems_for(*_ENDPOINT_PROBLEMS),
    response_model=EndpointWithSecretOut,
)
def rotate_secret(endpoint_id: str, caller: Manager, idem: Idem, ctx: Ctx) -> Response:
    request = idem.request("webhooks.rotate", {"id": endpoint_id})

    def work(conn: Connection, claimed: Request) -> EndpointWithSecretOut:
        rotated, secret = endpoints.rotate(
            conn,
            _endpoint_id(endpoint_id),
            now=ctx.clock.now(conn),
            overlap_seconds=ctx.webhooks.rotation_overlap_seconds,
            account=caller.customer_account_id,
        )
        return EndpointWithSecretOut(endpoint=_out(conn, rotated), secret=secret)

    return idem.respond(ctx, request, work)


@router.post(
    "/endpoints/{endpoint_id}/delete",
    description="Delete an endpoint for good; its pending deliveries fail, its log stays.",
    responses=problems_for(*_ENDPOINT_PROBLEMS),
    response_model=EndpointOut,
)
def delete_endpoint(endpoint_id: str, caller: Manager, idem: Idem, ctx: Ctx) -> Response:
    request = idem.request("webhooks.delete", {"id": endpoint_id})

    def work(conn: Connection, claimed: Request) -> EndpointOut:
        gone = endpoints.delete(
            conn,
            _endpoint_id(endpoint_id),
            now=ctx.clock.now(conn),
            account=caller.customer_account_id,
        )
        return _out(conn, gone)

    return idem.respond(ctx, request, work)


@router.post(
    "/endpoints/{endpoint_id}/replay",
    description="Deliver again to this endpoint every event since a time that its filter "
    "wants (each with its own event id as webhook-id).",
    responses=problems_for(*_ENDPOINT_PROBLEMS, "invalid_time", "invalid_webhook_endpoint"),
    response_model=ReplayOut,
)
def replay(endpoint_id: str, body: ReplayIn, caller: Manager, idem: Idem, ctx: Ctx) -> Response:
    since = parse_time(body.since)
    request = idem.request("webhooks.replay", {"id": endpoint_id, "since": since.isoformat()})

    def work(conn: Connection, claimed: Request) -> ReplayOut:
        count = deliveries.replay(
            conn,
            _endpoint_id(endpoint_id),
            since=since,
            now=ctx.clock.now(conn),
            account=caller.customer_account_id,
        )
        return ReplayOut(deliveries=count)

    return idem.respond(ctx, request, work)


@router.post(
    "/events/{event_id}/redeliver",
    description="Deliver one event again (same body, same webhook-id), to one endpoint or to "
    "every endpoint that wants it.",
    responses=problems_for(
        "event_not_found", "webhook_endpoint_not_found", "invalid_webhook_endpoint"
    ),
    response_model=RedeliveryOut,
)
def redeliver(event_id: str, body: RedeliverIn, caller: Manager, idem: Idem, ctx: Ctx) -> Response:
    request = idem.request(
        "webhooks.redeliver", {"event_id": event_id, "endpoint_id": body.endpoint_id}
    )

    def work(conn: Connection, claimed: Request) -> RedeliveryOut:
        made = deliveries.redeliver(
            conn,
            event_id,
            now=ctx.clock.now(conn),
            endpoint_id=None if body.endpoint_id is None else _endpoint_id(body.endpoint_id),
            account=caller.customer_account_id,
        )
        return RedeliveryOut(deliveries=[DeliveryOut.of(item) for item in made])

    return idem.respond(ctx, request, work)


@router.get(
    "/deliveries",
    description="The delivery log, newest first: by endpoint, event and status.",
    responses=problems_for("invalid_webhook_endpoint"),
)
def list_deliveries(
    caller: Manager,
    ctx: Ctx,
    endpoint_id: str | None = None,
    event_id: Annotated[str | None, Query(max_length=64)] = None,
    status: str | None = None,
    before: str | None = Query(default=None, description="A next_before from a previous page"),
    limit: int = Query(default=100, ge=1, le=deliveries.MAX_LISTED),
) -> DeliveryListOut:
    wanted = None
    if status is not None:
        try:
            wanted = DeliveryStatus(status)
        except ValueError:
            raise InvalidWebhookEndpoint(
                f"unknown delivery status {status!r}; known: pending, succeeded, failed"
            ) from None
    endpoint = None
    if endpoint_id is not None:
        try:
            endpoint = uuid.UUID(endpoint_id)
        except ValueError:
            raise InvalidWebhookEndpoint(f"{endpoint_id!r} is not an endpoint id") from None
    older = None
    if before is not None:
        try:
            older = _delivery_id(before)
        except WebhookDeliveryNotFound:
            raise InvalidWebhookEndpoint(
                f"{before!r} is not a next_before this API returned"
            ) from None
    with ctx.database.transaction() as conn:
        items = deliveries.listing(
            conn,
            account=caller.customer_account_id,
            endpoint_id=endpoint,
            event_id=event_id,
            status=wanted,
            before=older,
            limit=limit,
        )
    return DeliveryListOut(
        deliveries=[DeliveryOut.of(item) for item in items],
        next_before=f"{DELIVERY_PREFIX}{items[-1].id}" if len(items) == limit else None,
    )


@router.get(
    "/deliveries/{delivery_id}",
    description="One delivery with every attempt: status, latency, the start of the answer.",
    responses=problems_for("webhook_delivery_not_found"),
)
def get_delivery(delivery_id: str, caller: Manager, ctx: Ctx) -> DeliveryDetailOut:
    with ctx.database.transaction() as conn:
        try:
            item, attempts = deliveries.get(
                conn, _delivery_id(delivery_id), account=caller.customer_account_id
            )
        except WebhookDeliveryNotFound:
            raise WebhookDeliveryNotFound(
                f"webhook delivery {delivery_id} does not exist"
            ) from None
    return DeliveryDetailOut(
        **DeliveryOut.of(item).model_dump(), attempt_log=[AttemptOut.of(a) for a in attempts]
    )
