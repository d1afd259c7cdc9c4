"""Webhook endpoints, their deliveries and every attempt (migration 0012).

A delivery is one event for one endpoint: created by the fan-out (or by a redelivery or a
replay), attempted until a ``2xx`` or until the retry schedule runs out. Its lease columns
(``claimed_by``, ``lease_until``) are the sender's own, like the payout worker's. Every attempt
is a ``webhook_attempt`` row with the answer's status, the latency and the start of the body.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    Uuid,
)

from kassa.db.metadata import metadata
from kassa.db.types import BigId, UtcDateTime

webhook_endpoint = Table(
    "webhook_endpoint",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("url", Text, nullable=False),
    Column("description", String(500), nullable=False),
    Column(
        "event_types", Text, nullable=False, comment="Space-separated filters; empty: every type"
    ),
    Column(
        "customer_account_id",
        Uuid,
        ForeignKey("customer_account.id"),
        nullable=True,
        comment="When set, only this customer account's events",
    ),
    Column("status", String(16), nullable=False),
    Column("disabled_reason", Text, nullable=True),
    Column("secret", String(100), nullable=False, comment="whsec_…: signs every delivery"),
    Column("previous_secret", String(100), nullable=True, comment="Signs too until it expires"),
    Column("previous_secret_expires_at", UtcDateTime, nullable=True),
    Column("failing_since", UtcDateTime, nullable=True, comment="First failure since a success"),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("status IN ('enabled', 'disabled', 'deleted')", name="status"),
)

webhook_delivery = Table(
    "webhook_delivery",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("endpoint_id", Uuid, ForeignKey("webhook_endpoint.id"), nullable=False),
    Column("event_id", BigId, ForeignKey("event.id"), nullable=False),
    Column("origin", String(16), nullable=False, comment="event, redeliver or replay"),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("claimed_by", String(100), nullable=True),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
    CheckConstraint("origin IN ('event', 'redeliver', 'replay')", name="origin"),
    Index("ix_webhook_delivery_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_webhook_delivery_endpoint_id_id", "endpoint_id", "id"),
    Index("ix_webhook_delivery_event_id", "event_id"),
)

webhook_attempt = Table(
    "webhook_attempt",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", BigId, ForeignKey("webhook_delivery.id"), nullable=False),
    Column("number", Integer, nullable=False, comment="1, 2, 3, … per delivery"),
    Column("worker", String(100), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("url", Text, nullable=False),
    Column("address", String(64), nullable=True, comment="The address connected to"),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("succeeded", Boolean, nullable=False, comment="A 2xx answer"),
    Column("error", Text, nullable=True, comment="Why no answer, or why refused"),
    Column("response_snippet", Text, nullable=True),
    Index("ix_webhook_attempt_delivery_id", "delivery_id"),
)
