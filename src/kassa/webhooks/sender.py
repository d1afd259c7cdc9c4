"""The sender: claims due deliveries, POSTs them outside any transaction, records each attempt.

A round claims up to ``batch_size`` pending deliveries that are due, whose endpoint is enabled
and that nobody holds (SKIP LOCKED on PostgreSQL; SQLite has one writer anyway), and leases
them for ``lease_seconds``; a worker killed mid-round leaves its claims to lapse, and another
(or the same one restarted) sends them again with the same ``webhook-id``: at least once.
The POSTs run outside any transaction, ``concurrency`` at a time. Each answer is recorded in its
own short transaction: the attempt row (status, latency, the start of the answer) and the
delivery's next step — succeeded on a ``2xx``; otherwise the next attempt after the retry
schedule's wait (with jitter), or failed when the schedule has run out. A ``410 Gone`` disables
the endpoint; so does failing for ``disable_after_failing_seconds``; both raise the operator
event ``webhook_endpoint.disabled``.

The ``webhook-timestamp`` is the real time of the attempt (`wall`), not the scenario clock:
receivers check it against their own clock to refuse old replays.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, or_, select, update
from sqlalchemy import insert as sql_insert

from kassa.clock import Clock
from kassa.db import Database
from kassa.events.outbox import body, record
from kassa.events.tables import event
from kassa.telemetry.metrics import timed_round
from kassa.webhooks import deliveries, signing
from kassa.webhooks.endpoints import EndpointStatus, signing_secrets
from kassa.webhooks.settings import WebhookSettings
from kassa.webhooks.tables import webhook_attempt, webhook_delivery, webhook_endpoint
from kassa.webhooks.transport import Answer, SafeTransport

log = logging.getLogger(__name__)

DISABLED_EVENT = "webhook_endpoint.disabled"

_STEP = (
    update(webhook_delivery)
    .where(webhook_delivery.c.id == bindparam("b_id"))
    .values(
        {
            name: bindparam(name)
            for name in (
                "attempts",
                "last_status_code",
                "last_error",
                "updated_at",
                "status",
                "delivered_at",
                "next_attempt_at",
                "claimed_by",
                "lease_until",
            )
        }
    )
)
"""A delivery's next step, executed for a whole batch at once."""


@dataclass(frozen=True, slots=True)
class Job:
    delivery_id: int
    endpoint_id: uuid.UUID
    url: str
    keys: tuple[str, ...]
    msg_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Round:
    dispatched: int
    sent: int
    succeeded: int


class Sender:
    """One delivery worker: fan-out and sending, round after round."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        settings: WebhookSettings,
        *,
        transport: SafeTransport | None = None,
        worker_id: str | None = None,
        rng: random.Random | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.clock = clock
        self.settings = settings
        self.transport = transport or SafeTransport(settings)
        self.worker_id = worker_id or f"webhooks-{uuid.uuid4().hex[:12]}"
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self.wall = wall
        self._pool = ThreadPoolExecutor(
            max_workers=settings.concurrency, thread_name_prefix="kassa-webhook-post"
        )

    # -- rounds ----------------------------------------------------------------------

    def dispatch(self) -> int:
        total = 0
        while True:
            with self.database.transaction() as conn:
                count = deliveries.dispatch(
                    conn, now=self.clock.now(conn), limit=self.settings.batch_size
                )
            total += count
            if count < self.settings.batch_size:
                return total

    def run_once(self) -> Round:
        """Fan out new events, then send one batch of due deliveries."""
        dispatched = self.dispatch()
        jobs = self.claim()
        answers = list(self._pool.map(self.send, jobs))
        self.record(list(zip(jobs, answers, strict=True)))
        return Round(dispatched, len(jobs), sum(1 for a in answers if a.succeeded))

    def run_forever(self, stop: threading.Event) -> None:
        log.info("webhook sender %s started", self.worker_id)
        while not stop.is_set():
            try:
                with timed_round("webhooks"):
                    done = self.run_once()
            except Exception:
                log.exception("webhook round failed; retrying")
                stop.wait(self.settings.poll_interval_seconds)
                continue
            # A batch that was not full sent everything due (the fan-out drains the outbox
            # first): wait, so that events written meanwhile go out together in the next round
            # rather than a few at a time in rounds that cost three transactions each.
            if done.sent < self.settings.batch_size:
                stop.wait(self.settings.poll_interval_seconds)
        self.close()
        log.info("webhook sender %s stopped", self.worker_id)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.transport.close()

    # -- steps -----------------------------------------------------------------------

    def claim(self) -> list[Job]:
        """Lease up to ``batch_size`` due deliveries of enabled endpoints."""
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            query = (
                select(webhook_delivery.c.id)
                .join(webhook_endpoint, webhook_endpoint.c.id == webhook_delivery.c.endpoint_id)
                .where(
                    webhook_delivery.c.status == deliveries.DeliveryStatus.PENDING.value,
                    webhook_delivery.c.next_attempt_at <= now,
                    or_(
                        webhook_delivery.c.lease_until.is_(None),
                        webhook_delivery.c.lease_until <= now,
                    ),
                    webhook_endpoint.c.status == EndpointStatus.ENABLED.value,
                )
                .order_by(webhook_delivery.c.next_attempt_at, webhook_delivery.c.id)
                .limit(self.settings.batch_size)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=webhook_delivery)
            ids = list(conn.execute(query).scalars())
            if not ids:
                return []
            conn.execute(
                update(webhook_delivery)
                .where(webhook_delivery.c.id.in_(ids))
                .values(claimed_by=self.worker_id, lease_until=now + self._lease(len(ids)))
            )
            rows = conn.execute(
                select(
                    webhook_delivery.c.id.label("delivery_id"),
                    webhook_endpoint.c.id.label("endpoint_id"),
                    webhook_endpoint.c.url,
                    webhook_endpoint.c.secret,
                    webhook_endpoint.c.previous_secret,
                    webhook_endpoint.c.previous_secret_expires_at,
                    *event.c,  # what `body` reads, the event's own account id included
                )
                .join(webhook_endpoint, webhook_endpoint.c.id == webhook_delivery.c.endpoint_id)
                .join(event, event.c.id == webhook_delivery.c.event_id)
                .where(webhook_delivery.c.id.in_(ids))
                .order_by(webhook_delivery.c.next_attempt_at, webhook_delivery.c.id)
            ).all()
            return [
                Job(
                    delivery_id=row.delivery_id,
                    endpoint_id=row.endpoint_id,
                    url=row.url,
                    keys=tuple(signing_secrets(row, now)),
                    msg_id=row.public_id,
                    body=body(row),
                )
                for row in rows
            ]

    def _lease(self, claimed: int) -> timedelta:
        """Long enough for the whole batch even if every attempt runs into its deadline, so a
        live worker's claim does not lapse and get sent twice; ``lease_seconds`` at least."""
        settings = self.settings
        waves = -(-claimed // settings.concurrency)
        needed = waves * settings.timeout_seconds + 5
        return timedelta(seconds=max(settings.lease_seconds, needed))

    def send(self, job: Job) -> Answer:
        """One POST, outside any transaction; whatever goes wrong is the attempt's error."""
        try:
            stamp = int(self.wall())
            headers = signing.headers(job.msg_id, stamp, job.body, job.keys)
            return self.transport.post(job.url, headers, job.body)
        except Exception as error:
            log.exception("webhook delivery %s could not be sent", job.delivery_id)
            return Answer(None, b"", f"{type(error).__name__}: {error}", 0, None)

    def record(self, results: Sequence[tuple[Job, Answer]]) -> None:
        """Each attempt and its delivery's next step, and what the answers say about their
        endpoints, in one transaction for the whole batch."""
        if not results:
            return
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            ids = sorted(job.delivery_id for job, _answer in results)
            current = {
                row.id: row
                for row in conn.execute(
                    select(webhook_delivery)
                    .where(webhook_delivery.c.id.in_(ids))
                    .order_by(webhook_delivery.c.id)
                    .with_for_update()
                )
            }
            attempts, steps = [], []
            for job, answer in results:
                row = current[job.delivery_id]
                number = row.attempts + 1
                attempts.append(self._attempt(job, answer, number, now))
                steps.append(self._next_step(row, answer, number, now))
            conn.execute(_STEP, steps)
            conn.execute(sql_insert(webhook_attempt), attempts)
            by_endpoint: dict[uuid.UUID, list[Answer]] = {}
            for job, answer in results:
                by_endpoint.setdefault(job.endpoint_id, []).append(answer)
            for endpoint_id in sorted(by_endpoint):
                self._endpoint_health(conn, endpoint_id, by_endpoint[endpoint_id], now)

    def _attempt(self, job: Job, answer: Answer, number: int, now: datetime) -> dict[str, Any]:
        snippet = answer.body[: self.settings.snippet_bytes].decode("utf-8", "replace")
        return {
            "delivery_id": job.delivery_id,
            "number": number,
            "worker": self.worker_id,
            "started_at": now - timedelta(milliseconds=answer.latency_ms),
            "url": job.url,
            "address": answer.address,
            "status_code": answer.status_code,
            "latency_ms": answer.latency_ms,
            "succeeded": answer.succeeded,
            "error": answer.error,
            "response_snippet": snippet or None,
        }

    def _next_step(
        self, row: Row[Any], answer: Answer, number: int, now: datetime
    ) -> dict[str, Any]:
        """Every column `_STEP` sets, for one delivery: unchanged ones keep their value."""
        values: dict[str, Any] = {
            "b_id": row.id,
            "attempts": number,
            "last_status_code": answer.status_code,
            "last_error": answer.error,
            "updated_at": now,
            "status": row.status,
            "delivered_at": row.delivered_at,
            "next_attempt_at": row.next_attempt_at,
            "claimed_by": row.claimed_by,
            "lease_until": row.lease_until,
        }
        pending = row.status == deliveries.DeliveryStatus.PENDING.value
        if answer.succeeded and pending:
            # Also when another worker holds it now (our lease lapsed): the receiver has it.
            values.update(
                status=deliveries.DeliveryStatus.SUCCEEDED.value,
                delivered_at=now,
                next_attempt_at=None,
            )
        if not pending or row.claimed_by != self.worker_id:
            return values
        values.update(claimed_by=None, lease_until=None)
        if not answer.succeeded:
            wait = self._wait(number)
            if wait is None:
                values.update(status=deliveries.DeliveryStatus.FAILED.value, next_attempt_at=None)
            else:
                values.update(next_attempt_at=now + wait)
        return values

    def _wait(self, failed_attempts: int) -> timedelta | None:
        schedule = self.settings.retry_schedule_seconds
        if failed_attempts > len(schedule):
            return None
        base = schedule[failed_attempts - 1]
        spread = self.settings.jitter_percent / 100
        factor = 1 + self.rng.uniform(-spread, spread) if spread else 1.0
        return timedelta(seconds=base * factor)

    def _endpoint_health(
        self, conn: Connection, endpoint_id: uuid.UUID, answers: list[Answer], now: datetime
    ) -> None:
        """A success clears the endpoint's failing time; a ``410`` disables it, and so do
        failures for longer than ``disable_after_failing_seconds``."""
        gone = any(a.status_code == 410 for a in answers)
        succeeded = any(a.succeeded for a in answers)
        row = conn.execute(
            select(webhook_endpoint).where(webhook_endpoint.c.id == endpoint_id)
        ).one()
        if row.status != EndpointStatus.ENABLED.value:
            return
        if succeeded and not gone:
            if row.failing_since is not None:
                conn.execute(
                    update(webhook_endpoint)
                    .where(webhook_endpoint.c.id == endpoint_id)
                    .values(failing_since=None)
                )
            return
        since = row.failing_since or now
        limit = timedelta(seconds=self.settings.disable_after_failing_seconds)
        reason = None
        if gone:
            reason = "the endpoint answered 410 Gone"
        elif now - since >= limit:
            reason = f"every attempt failed since {since:%Y-%m-%d %H:%M:%S}Z"
        if reason is None:
            if row.failing_since is None:
                conn.execute(
                    update(webhook_endpoint)
                    .where(webhook_endpoint.c.id == endpoint_id)
                    .values(failing_since=since)
                )
            return
        disabled = conn.execute(
            update(webhook_endpoint)
            .where(
                webhook_endpoint.c.id == endpoint_id,
                webhook_endpoint.c.status == EndpointStatus.ENABLED.value,
            )
            .values(
                status=EndpointStatus.DISABLED.value,
                disabled_reason=reason,
                failing_since=since,
                updated_at=now,
            )
        ).rowcount
        if not disabled:
            return  # disabled meanwhile by someone else, who raised the event
        log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
        record(
            conn,
            type=DISABLED_EVENT,
            subject_kind="webhook_endpoint",
            subject_id=endpoint_id,
            data={
                "id": str(endpoint_id),
                "url": row.url,
                "status": EndpointStatus.DISABLED.value,
                "reason": reason,
                "customer_account_id": (
                    str(row.customer_account_id) if row.customer_account_id else None
                ),
            },
            at=now,
        )
