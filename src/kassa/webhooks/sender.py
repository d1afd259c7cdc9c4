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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, or_, select, update
from sqlalchemy import insert as sql_insert

from kassa.clock import Clock
from kassa.db import Database
from kassa.events.outbox import body, record
from kassa.events.tables import event
from kassa.webhooks import deliveries, signing
from kassa.webhooks.endpoints import EndpointStatus, signing_secrets
from kassa.webhooks.settings import WebhookSettings
from kassa.webhooks.tables import webhook_attempt, webhook_delivery, webhook_endpoint
from kassa.webhooks.transport import Answer, SafeTransport

log = logging.getLogger(__name__)

DISABLED_EVENT = "webhook_endpoint.disabled"


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
        for job, answer in zip(jobs, answers, strict=True):
            self.record(job, answer)
        return Round(dispatched, len(jobs), sum(1 for a in answers if a.succeeded))

    def run_forever(self, stop: threading.Event) -> None:
        log.info("webhook sender %s started", self.worker_id)
        while not stop.is_set():
            try:
                done = self.run_once()
            except Exception:
                log.exception("webhook round failed; retrying")
                stop.wait(self.settings.poll_interval_seconds)
                continue
            if done.sent < self.settings.batch_size and not done.dispatched:
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
                .values(
                    claimed_by=self.worker_id,
                    lease_until=now + timedelta(seconds=self.settings.lease_seconds),
                )
            )
            rows = conn.execute(
                select(
                    webhook_delivery.c.id.label("delivery_id"),
                    webhook_endpoint,
                    event,
                )
                .join(webhook_endpoint, webhook_endpoint.c.id == webhook_delivery.c.endpoint_id)
                .join(event, event.c.id == webhook_delivery.c.event_id)
                .where(webhook_delivery.c.id.in_(ids))
                .order_by(webhook_delivery.c.next_attempt_at, webhook_delivery.c.id)
            ).all()
            return [
                Job(
                    delivery_id=row.delivery_id,
                    endpoint_id=row.id,
                    url=row.url,
                    keys=tuple(signing_secrets(row, now)),
                    msg_id=row.public_id,
                    body=body(row),
                )
                for row in rows
            ]

    def send(self, job: Job) -> Answer:
        """One POST, outside any transaction."""
        stamp = int(self.wall())
        headers = signing.headers(job.msg_id, stamp, job.body, job.keys)
        return self.transport.post(job.url, headers, job.body)

    def record(self, job: Job, answer: Answer) -> None:
        """The attempt and the delivery's next step, in one transaction."""
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            current = conn.execute(
                select(webhook_delivery)
                .where(webhook_delivery.c.id == job.delivery_id)
                .with_for_update()
            ).one()
            number = current.attempts + 1
            snippet = answer.body[: self.settings.snippet_bytes].decode("utf-8", "replace")
            conn.execute(
                sql_insert(webhook_attempt).values(
                    delivery_id=job.delivery_id,
                    number=number,
                    worker=self.worker_id,
                    started_at=now - timedelta(milliseconds=answer.latency_ms),
                    url=job.url,
                    address=answer.address,
                    status_code=answer.status_code,
                    latency_ms=answer.latency_ms,
                    succeeded=answer.succeeded,
                    error=answer.error,
                    response_snippet=snippet or None,
                )
            )
            values: dict[str, object] = {
                "attempts": number,
                "last_status_code": answer.status_code,
                "last_error": answer.error,
                "updated_at": now,
            }
            held = (
                current.status == deliveries.DeliveryStatus.PENDING.value
                and current.claimed_by == self.worker_id
            )
            if held:
                values.update(claimed_by=None, lease_until=None)
                if answer.succeeded:
                    values.update(
                        status=deliveries.DeliveryStatus.SUCCEEDED.value,
                        delivered_at=now,
                        next_attempt_at=None,
                    )
                else:
                    wait = self._wait(number)
                    if wait is None:
                        values.update(
                            status=deliveries.DeliveryStatus.FAILED.value, next_attempt_at=None
                        )
                    else:
                        values.update(next_attempt_at=now + wait)
            elif answer.succeeded and current.status == deliveries.DeliveryStatus.PENDING.value:
                # Another worker holds it now (our lease lapsed): the receiver has it anyway.
                values.update(
                    status=deliveries.DeliveryStatus.SUCCEEDED.value,
                    delivered_at=now,
                    next_attempt_at=None,
                )
            conn.execute(
                update(webhook_delivery)
                .where(webhook_delivery.c.id == job.delivery_id)
                .values(values)
            )
            self._endpoint_health(conn, job, answer, now)

    def _wait(self, failed_attempts: int) -> timedelta | None:
        schedule = self.settings.retry_schedule_seconds
        if failed_attempts > len(schedule):
            return None
        base = schedule[failed_attempts - 1]
        spread = self.settings.jitter_percent / 100
        factor = 1 + self.rng.uniform(-spread, spread) if spread else 1.0
        return timedelta(seconds=base * factor)

    def _endpoint_health(self, conn: Connection, job: Job, answer: Answer, now: datetime) -> None:
        row = conn.execute(
            select(webhook_endpoint)
            .where(webhook_endpoint.c.id == job.endpoint_id)
            .with_for_update()
        ).one()
        if answer.succeeded:
            if row.failing_since is not None:
                conn.execute(
                    update(webhook_endpoint)
                    .where(webhook_endpoint.c.id == row.id)
                    .values(failing_since=None)
                )
            return
        if row.status != EndpointStatus.ENABLED.value:
            return
        since = row.failing_since or now
        limit = timedelta(seconds=self.settings.disable_after_failing_seconds)
        reason = None
        if answer.status_code == 410:
            reason = "the endpoint answered 410 Gone"
        elif now - since >= limit:
            reason = f"every attempt failed since {since:%Y-%m-%d %H:%M:%S}Z"
        values: dict[str, object] = {"failing_since": since}
        if reason is not None:
            values.update(
                status=EndpointStatus.DISABLED.value, disabled_reason=reason, updated_at=now
            )
        conn.execute(update(webhook_endpoint).where(webhook_endpoint.c.id == row.id).values(values))
        if reason is not None:
            log.warning("webhook endpoint %s disabled: %s", row.id, reason)
            record(
                conn,
                type=DISABLED_EVENT,
                subject_kind="webhook_endpoint",
                subject_id=row.id,
                data={
                    "id": str(row.id),
                    "url": row.url,
                    "status": EndpointStatus.DISABLED.value,
                    "reason": reason,
                    "customer_account_id": (
                        str(row.customer_account_id) if row.customer_account_id else None
                    ),
                },
                at=now,
            )
