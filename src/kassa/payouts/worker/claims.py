"""Claiming approved payouts: a lease per request, so several workers never pay the same one.

A worker claims up to ``batch_size`` approved requests nobody holds and that are due (SKIP
LOCKED on PostgreSQL, so concurrent claims pass each other by), renews its lease before working
on a batch (a round may run long), and releases what cannot be paid now with the reason it
waits. Signing and failing re-check the claim under a row lock (`held`): a request that another
worker took over, or that left ``approved`` (cancelled, rejected), is never signed.

The lease columns (``claimed_by``, ``lease_until``, ``next_attempt_at``, ``wait_reason``) are the
worker's own; status moves go through `kassa.payouts.store.move`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, or_, select, update

from kassa.assets import Chain, chain_of
from kassa.money import USD, Asset, Money, asset
from kassa.payouts.model import RequestStatus
from kassa.payouts.tables import payout_request
from kassa.payouts.worker.context import WorkerContext
from kassa.policy import FeeCharge

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """An approved request as the worker needs it."""

    id: uuid.UUID
    coin: Asset
    chain: Chain
    destination: str
    gross_usd: Money
    fees_usd: Money
    flat_fee_usd: Money
    fee_charge: FeeCharge
    net_native: Money
    """The committed coins: exactly what the destination receives."""
    net_usd: Money
    network_fee_usd: Money
    """The network fee the customer was charged (USD)."""
    quoted_fee: Money | None
    """The network fee the quote priced, in the fee asset."""
    fee_approved_by: str | None
    """An operator let it pay a fee above the quote (at the house's cost)."""
    rate_lock_id: uuid.UUID
    hold_id: uuid.UUID
    attempts: int
    kind: str

    @classmethod
    def of(cls, row: Row[Any]) -> Job:
        coin = asset(row.asset)
        return cls(
            id=row.id,
            coin=coin,
            chain=chain_of(coin),
            destination=row.destination,
            gross_usd=Money(row.gross_usd, USD),
            fees_usd=Money(row.fees_usd, USD),
            flat_fee_usd=Money(row.flat_fee_usd, USD),
            fee_charge=FeeCharge(row.fee_charge),
            net_native=Money(row.net_native, coin),
            net_usd=Money(row.net_usd, USD),
            network_fee_usd=Money(row.network_fee_usd, USD),
            quoted_fee=(
                None
                if row.network_fee_asset is None
                else Money(row.network_fee_native, asset(row.network_fee_asset))
            ),
            fee_approved_by=row.fee_approved_by,
            rate_lock_id=row.rate_lock_id,
            hold_id=row.hold_id,
            attempts=int(row.attempts),
            kind=row.kind,
        )


def claim(ctx: WorkerContext) -> list[Job]:
    """Lease up to ``batch_size`` approved requests that nobody holds and are due."""
    worker = ctx.settings.worker
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        query = (
            select(payout_request)
            .where(
                payout_request.c.status == RequestStatus.APPROVED.value,
                or_(
                    payout_request.c.lease_until.is_(None),
                    payout_request.c.lease_until <= now,
                ),
                or_(
                    payout_request.c.next_attempt_at.is_(None),
                    payout_request.c.next_attempt_at <= now,
                ),
            )
            .order_by(payout_request.c.created_at, payout_request.c.id)
            .limit(worker.batch_size)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        if not rows:
            return []
        lease = now + timedelta(seconds=worker.lease_seconds)
        conn.execute(
            update(payout_request)
            .where(payout_request.c.id.in_([row.id for row in rows]))
            .values(claimed_by=ctx.worker_id, lease_until=lease)
        )
        return [Job.of(row) for row in rows]


def renew(ctx: WorkerContext, jobs: list[Job]) -> list[Job]:
    """Extend this worker's lease on ``jobs`` before working on them, and drop any that
    another worker took over meanwhile (a claim lapses when a round runs long) or that
    left ``approved`` (cancelled, rejected). Signing re-checks the claim under a row lock;
    renewing here keeps a long round from losing its later payouts to another worker and
    having done their pricing for nothing."""
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        kept = set(
            conn.execute(
                update(payout_request)
                .where(
                    payout_request.c.id.in_([job.id for job in jobs]),
                    payout_request.c.status == RequestStatus.APPROVED.value,
                    payout_request.c.claimed_by == ctx.worker_id,
                )
                .values(lease_until=now + timedelta(seconds=ctx.settings.worker.lease_seconds))
                .returning(payout_request.c.id)
            ).scalars()
        )
    lost = [job.id for job in jobs if job.id not in kept]
    if lost:
        log.info("payouts no longer claimed by %s: %s", ctx.worker_id, lost)
    return [job for job in jobs if job.id in kept]


def release(
    ctx: WorkerContext, jobs: Iterable[Job], reason: str, *, retry: bool = True
) -> dict[uuid.UUID, str]:
    """Leave approved jobs waiting with ``reason``; retried after ``retry_seconds``."""
    ids = [job.id for job in jobs]
    if not ids:
        return {}
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        later = now + timedelta(seconds=ctx.settings.worker.retry_seconds)
        conn.execute(
            update(payout_request)
            .where(
                payout_request.c.id.in_(ids),
                payout_request.c.status == RequestStatus.APPROVED.value,
                payout_request.c.claimed_by == ctx.worker_id,
            )
            .values(
                claimed_by=None,
                lease_until=None,
                wait_reason=reason,
                next_attempt_at=later if retry else None,
                updated_at=now,
            )
        )
    log.info("payouts waiting (%s): %s", reason, ", ".join(str(i) for i in ids))
    return dict.fromkeys(ids, reason)


def release_all(ctx: WorkerContext) -> int:
    """Give up every claim this worker holds on approved requests (on its way out), without a
    wait reason or a retry delay: they were not tried, and another worker may take them now."""
    with ctx.unit() as conn:
        released = conn.execute(
            update(payout_request)
            .where(
                payout_request.c.claimed_by == ctx.worker_id,
                payout_request.c.status == RequestStatus.APPROVED.value,
            )
            .values(claimed_by=None, lease_until=None)
        ).rowcount
    if released:
        log.info("released %d claimed payout(s) on the way out", released)
    return released


def held(
    conn: Connection,
    ctx: WorkerContext,
    request_ids: Sequence[uuid.UUID],
    *,
    lease_after: datetime | None = None,
) -> list[uuid.UUID]:
    """Lock those of ``request_ids`` that are approved and claimed by this worker (with a lease
    running past ``lease_after``, when given) and return them."""
    query = select(payout_request.c.id).where(
        payout_request.c.id.in_(list(request_ids)),
        payout_request.c.status == RequestStatus.APPROVED.value,
        payout_request.c.claimed_by == ctx.worker_id,
    )
    if lease_after is not None:
        query = query.where(payout_request.c.lease_until > lease_after)
    return list(conn.execute(query.with_for_update()).scalars())
