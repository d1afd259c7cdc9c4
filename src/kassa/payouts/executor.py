"""The payout worker: approved refunds and withdrawals reach the chain exactly once.

One round (`PayoutWorker.run_once`) does two things:

1. **Advance what is in flight.** Every stored transaction that is signed or broadcast is asked
   about (`Rail.status`): a signed one the node does not know is (re)broadcast with the *same
   bytes*; a final one is settled (hold captured, payout and actual fee booked); a failed one
   (a reverted token transfer) fails its payouts and books the fee that was burnt; a dead one
   (proven never to be included) frees its spend identity and sends its payouts back to
   ``approved`` to be signed anew — but only when no other version of the same spend (a fee
   bump) is still alive; a stuck one gets a replacement with a higher fee that spends the same
   identity (same ETH nonce, same BTC inputs).
2. **Execute approved payouts.** Claim a batch of approved requests with a lease (SKIP LOCKED on
   PostgreSQL, so several workers never claim the same row); for each (or, for BTC with batching,
   each group) estimate the fee from the chain, price it at a payout-time rate lock, re-price
   the net amount under the policy's network-fee mode, fail cleanly when nothing or only dust
   would be left, check the hot wallet (short → the payout *waits* with the reason), then in one
   database transaction allocate the spend identity, sign, and store the signed bytes with the
   request moved to ``signed``. Only after that commit is anything broadcast.

Why this is exactly-once: a payout is signed only while its request row is ``approved`` and
claimed by this worker (checked under a row lock in the signing transaction); the signed bytes
and spend identity are committed before the broadcast; after a crash the next round finds the
``signed``/``broadcast`` transaction and rebroadcasts the same bytes (a node treats them as the
same transaction); something new is signed only after the chain proves the old one dead.

Money: the request reserved ``gross_usd`` by a hold. On confirmation the hold is captured into
``clearing:payouts:USD`` and one journal transaction clears it: fees to revenue, the network fee
charged to ``house:network-fees:USD``, the net out through the FX accounts and the hot wallet,
and the fee the chain actually charged (valued at the payout-time rate) from the hot wallet to
``house:network-fees:USD`` — so that account's balance is exactly what fees cost the house
beyond what customers paid for them.

Fault injection for the crash tests: ``KASSA_FAULT_CRASH_AT`` = ``after_sign``,
``after_broadcast`` or ``before_confirm`` makes the process exit at once (``os._exit``, no
cleanup, like a kill -9) at that point. Never set it in production.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, or_, select, update

from kassa.assets import chain_of, fee_asset_of
from kassa.chains.network import Chain
from kassa.clock import Clock
from kassa.db import Database
from kassa.errors import KassaError
from kassa.ledger import holds, house
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.model import TransactionKind
from kassa.ledger.transfers import Leg, post
from kassa.money import USD, Asset, AssetCode, Money, asset
from kassa.payouts.model import RequestStatus, check_transition
from kassa.payouts.rails.base import (
    IN_FLIGHT,
    BroadcastOutcome,
    FeeEstimate,
    HotWalletShort,
    PayoutLine,
    PayoutNotSendable,
    Rail,
    RailUnavailable,
    SignedTx,
    StoredTx,
    TxState,
    TxStatus,
)
from kassa.payouts.requests import clearing, rate_facts
from kassa.payouts.settings import PayoutSettings
from kassa.payouts.tables import payout_event, payout_request, payout_tx, payout_tx_line
from kassa.policy import FeeCharge, NetworkFee, payout
from kassa.pricing.errors import NoRate
from kassa.pricing.locks import RateLock, get_lock
from kassa.pricing.locks import Side as RateSide
from kassa.pricing.service import PricingService

log = logging.getLogger(__name__)

CRASH_ENV = "KASSA_FAULT_CRASH_AT"
CRASH_POINTS = frozenset({"after_sign", "after_broadcast", "before_confirm"})


def _crash_point_from_env() -> str | None:
    value = os.environ.get(CRASH_ENV)
    if value is None or value == "":
        return None
    if value not in CRASH_POINTS:
        raise ValueError(f"{CRASH_ENV} must be one of {sorted(CRASH_POINTS)}, got {value!r}")
    return value


class WorkerConflict(RuntimeError):
    """The books refused a step of the worker (e.g. the payout's hold was resolved by someone
    else): nothing of that step was committed; an operator must look."""


@dataclass(frozen=True, slots=True)
class _Job:
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
    rate_lock_id: uuid.UUID
    hold_id: uuid.UUID
    attempts: int
    kind: str

    @classmethod
    def of(cls, row: Row[Any]) -> _Job:
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
            rate_lock_id=row.rate_lock_id,
            hold_id=row.hold_id,
            attempts=int(row.attempts),
            kind=row.kind,
        )


@dataclass(frozen=True, slots=True)
class _Priced:
    """A job re-priced with the fee measured at execution."""

    job: _Job
    fee_share: Money
    fee_usd: Money
    fee_charged_usd: Money
    net_usd: Money
    net_native: Money
    execution_lock: RateLock


@dataclass
class RoundReport:
    """What one round did (for logs, the CLI and tests)."""

    signed: list[uuid.UUID] = field(default_factory=list)
    broadcast: list[str] = field(default_factory=list)
    confirmed: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    waiting: dict[uuid.UUID, str] = field(default_factory=dict)
    resigned: list[uuid.UUID] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Unexpected errors of single transactions or batches (logged; the others went on)."""

    @property
    def idle(self) -> bool:
        return not (
            self.signed
            or self.broadcast
            or self.confirmed
            or self.failed
            or self.resigned
            or self.replaced
        )


def _stored(row: Row[Any], lines: Sequence[Row[Any]]) -> StoredTx:
    coin = asset(row.asset)
    return StoredTx(
        id=row.id,
        chain=Chain(row.chain),
        txid=row.txid,
        raw=row.raw,
        spend_key=row.spend_key,
        spend=json.loads(row.spend),
        fee=Money(row.fee_native, asset(row.fee_asset)),
        lines=tuple(
            PayoutLine(
                request_id=line.request_id,
                destination=line.destination,
                amount=Money(line.amount_native, coin),
            )
            for line in lines
        ),
        created_at=row.created_at,
        broadcast_at=row.broadcast_at,
        expires_at=row.expires_at,
    )


def _split(total: Money, count: int) -> list[Money]:
    """``total`` in ``count`` shares that add up exactly (remainder on the first ones)."""
    base, remainder = divmod(total.amount, count)
    return [Money(base + (1 if i < remainder else 0), total.asset) for i in range(count)]


@dataclass
class PayoutWorker:
    """Runs payout rounds; see the module docstring. One instance per worker process."""

    database: Database
    clock: Clock
    pricing: PricingService
    settings: PayoutSettings
    rails: Mapping[Chain, Rail]
    worker_id: str = field(default_factory=lambda: f"payout-worker:{uuid.uuid4().hex[:12]}")
    crash_at: str | None = field(default_factory=_crash_point_from_env)

    # ------------------------------------------------------------------ the loop

    def run_once(self) -> RoundReport:
        report = RoundReport()
        self.advance_in_flight(report)
        self.execute_approved(report)
        return report

    def run_forever(self, stop: threading.Event) -> None:
        interval = self.settings.worker.poll_interval_seconds
        while not stop.is_set():
            try:
                report = self.run_once()
            except Exception:  # a round must never kill the worker; the next one retries
                log.exception("payout round failed")
                report = RoundReport()
            if report.idle:
                stop.wait(interval)

    @contextmanager
    def _unit(self) -> Iterator[Connection]:
        """A database transaction that rolls back on *every* error. `Database.transaction`
        commits a "recorded" refusal (so an API request's idempotency record survives); the
        worker has no such record, and a half-done settlement (transaction confirmed, hold
        not captured) must never be committed. Such a refusal surfaces as `WorkerConflict`."""
        with self.database.transaction() as conn:
            try:
                yield conn
            except KassaError as error:
                if error.recorded:
                    raise WorkerConflict(f"{type(error).__name__}: {error}") from error
                raise

    def _crash(self, point: str) -> None:
        if self.crash_at == point:
            log.error("fault injection: exiting at %s", point)
            os._exit(86)

    # ------------------------------------------------------------------ claiming

    def _claim(self) -> list[_Job]:
        """Lease up to ``batch_size`` approved requests that nobody holds and are due."""
        with self._unit() as conn:
            now = self.clock.now(conn)
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
                .limit(self.settings.worker.batch_size)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = conn.execute(query).all()
            if not rows:
                return []
            lease = now + timedelta(seconds=self.settings.worker.lease_seconds)
            conn.execute(
                update(payout_request)
                .where(payout_request.c.id.in_([row.id for row in rows]))
                .values(claimed_by=self.worker_id, lease_until=lease)
            )
            return [_Job.of(row) for row in rows]

    def _release(
        self, jobs: Iterable[_Job], reason: str, *, retry: bool = True
    ) -> dict[uuid.UUID, str]:
        """Leave approved jobs waiting with ``reason``; retried after ``retry_seconds``."""
        ids = [job.id for job in jobs]
        if not ids:
            return {}
        with self._unit() as conn:
            now = self.clock.now(conn)
            later = now + timedelta(seconds=self.settings.worker.retry_seconds)
            conn.execute(
                update(payout_request)
                .where(
                    payout_request.c.id.in_(ids),
                    payout_request.c.status == RequestStatus.APPROVED.value,
                    payout_request.c.claimed_by == self.worker_id,
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

    # ------------------------------------------------------------------ executing

    def execute_approved(self, report: RoundReport) -> None:
        jobs = self._claim()
        if not jobs:
            return
        groups: dict[AssetCode, list[_Job]] = defaultdict(list)
        for job in jobs:
            groups[job.coin.code].append(job)
        for code, group in groups.items():
            rail = self.rails.get(chain_of(code))
            if rail is None:
                report.waiting |= self._release(
                    group, f"payouts on {chain_of(code).display_name} are not set up"
                )
                continue
            for batch in self._batches(rail, group):
                batch = self._renew(batch)
                if not batch:
                    continue
                try:
                    self._execute(rail, batch, report)
                except Exception as error:  # the claim lapses; the next round tries again
                    log.exception("payouts %s could not be executed", [j.id for j in batch])
                    report.errors.append(
                        f"{', '.join(str(j.id) for j in batch)}: {type(error).__name__}: {error}"
                    )

    def _renew(self, jobs: list[_Job]) -> list[_Job]:
        """Extend this worker's lease on ``jobs`` before working on them, and drop any that
        another worker took over meanwhile (a claim lapses when a round runs long) or that
        left ``approved`` (cancelled, rejected). Signing re-checks the claim under a row lock;
        renewing here keeps a long round from losing its later payouts to another worker and
        having done their pricing for nothing."""
        with self._unit() as conn:
            now = self.clock.now(conn)
            kept = set(
                conn.execute(
                    update(payout_request)
                    .where(
                        payout_request.c.id.in_([job.id for job in jobs]),
                        payout_request.c.status == RequestStatus.APPROVED.value,
                        payout_request.c.claimed_by == self.worker_id,
                    )
                    .values(lease_until=now + timedelta(seconds=self.settings.worker.lease_seconds))
                    .returning(payout_request.c.id)
                ).scalars()
            )
        lost = [job.id for job in jobs if job.id not in kept]
        if lost:
            log.info("payouts no longer claimed by %s: %s", self.worker_id, lost)
        return [job for job in jobs if job.id in kept]

    def _batches(self, rail: Rail, jobs: list[_Job]) -> list[list[_Job]]:
        btc = self.settings.btc
        if rail.chain is Chain.BTC and btc.batching:
            size = btc.max_batch
            return [jobs[i : i + size] for i in range(0, len(jobs), size)]
        return [[job] for job in jobs]

    def _price(
        self, jobs: Sequence[_Job], estimate: FeeEstimate, coin: Asset
    ) -> tuple[list[_Priced], dict[uuid.UUID, str]]:
        """Re-price each job with its share of the estimated fee at a payout-time rate."""
        fee_asset = fee_asset_of(coin)
        shares = [estimate.share(i, len(jobs)) for i in range(len(jobs))]
        priced: list[_Priced] = []
        refused: dict[uuid.UUID, str] = {}
        with self._unit() as conn:
            now = self.clock.now(conn)
            request_locks = {job.id: get_lock(conn, job.rate_lock_id) for job in jobs}
        # A lock per attempt and ten minutes: a payout that waited (hot wallet short, node
        # down) is priced at a rate of now, not of its first try, without a new lock per retry.
        bucket = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
        for job, share in zip(jobs, shares, strict=True):
            execution_lock = self.pricing.lock(
                purpose=f"payout:{job.id}:execution:{job.attempts + 1}:{bucket:%Y%m%dT%H%M}",
                asset=fee_asset.code,
                side=RateSide.ASK,
                at=now,
            )
            fee = NetworkFee(amount=share, rate=rate_facts(execution_lock, fee_asset))
            paid = payout(
                job.gross_usd - job.fees_usd,
                rate_facts(request_locks[job.id], coin),
                fee,
                job.fee_charge,
                job.flat_fee_usd,
            )
            if not paid.net_native.is_positive:
                refused[job.id] = (
                    f"the network fee of {share.format()} {fee_asset.code} "
                    f"({paid.network_fee_usd.format()} USD) leaves nothing to pay out"
                )
                continue
            priced.append(
                _Priced(
                    job=job,
                    fee_share=share,
                    fee_usd=paid.network_fee_usd,
                    fee_charged_usd=paid.network_fee_charged_usd,
                    net_usd=paid.net_usd,
                    net_native=paid.net_native,
                    execution_lock=execution_lock,
                )
            )
        return priced, refused

    def _execute(self, rail: Rail, jobs: list[_Job], report: RoundReport) -> None:
        coin = jobs[0].coin
        provisional = [PayoutLine(job.id, job.destination, job.net_native) for job in jobs]
        try:
            estimate = rail.estimate(coin, provisional)
            priced, refused = self._price(jobs, estimate, coin)
        except (RailUnavailable, NoRate, HotWalletShort) as error:
            report.waiting |= self._release(jobs, str(error))
            return
        except PayoutNotSendable as refused_error:
            for job in jobs:
                self._fail_unsent(job.id, refused_error.detail, report)
            return
        for job_id, reason in refused.items():
            self._fail_unsent(job_id, reason, report)
        sendable: list[_Priced] = []
        for item in priced:
            dust = rail.dust_limit(coin, item.job.destination)
            if item.net_native < dust:
                self._fail_unsent(
                    item.job.id,
                    f"after the network fee only {item.net_native.format()} {coin.code} is "
                    f"left, below the chain's dust limit of {dust.format()} {coin.code}",
                    report,
                )
            else:
                sendable.append(item)
        if not sendable:
            return
        if len(sendable) != len(jobs):
            # The fee was shared over more payouts than remain: price the rest again.
            remaining = [item.job for item in sendable]
            self._execute(rail, remaining, report)
            return
        lines = [PayoutLine(p.job.id, p.job.destination, p.net_native) for p in sendable]
        try:
            with self._unit() as conn:
                rail.check_funds(conn, coin, lines)
        except HotWalletShort as short:
            report.waiting |= self._release(jobs, short.detail)
            return
        except RailUnavailable as error:
            report.waiting |= self._release(jobs, str(error))
            return
        try:
            stored = self._sign_and_store(rail, coin, sendable, lines, estimate)
        except HotWalletShort as short:
            report.waiting |= self._release(jobs, short.detail)
            return
        except RailUnavailable as error:
            report.waiting |= self._release(jobs, str(error))
            return
        except PayoutNotSendable as refused_error:
            for item in sendable:
                self._fail_unsent(item.job.id, refused_error.detail, report)
            return
        if stored is None:  # lost the claim meanwhile (lease lapsed, cancelled): nothing signed
            return
        report.signed.extend(item.job.id for item in sendable)
        self._crash("after_sign")
        self._broadcast(rail, stored, report)

    def _sign_and_store(
        self,
        rail: Rail,
        coin: Asset,
        priced: Sequence[_Priced],
        lines: Sequence[PayoutLine],
        estimate: FeeEstimate,
    ) -> StoredTx | None:
        ids = [item.job.id for item in priced]
        with self._unit() as conn:
            now = self.clock.now(conn)
            locked = conn.execute(
                select(payout_request.c.id)
                .where(
                    payout_request.c.id.in_(ids),
                    payout_request.c.status == RequestStatus.APPROVED.value,
                    payout_request.c.claimed_by == self.worker_id,
                    payout_request.c.lease_until > now,
                )
                .with_for_update()
            ).all()
            if len(locked) != len(ids):
                log.warning("payout claim lost before signing: %s", ids)
                return None
            signed = rail.sign(conn, coin, lines, estimate, now=now)
            shares = {item.job.id: item.fee_share.amount for item in priced}
            tx_id = self._insert_tx(conn, rail, coin, signed, lines, shares, estimate, None, now)
            for item in priced:
                conn.execute(
                    update(payout_request)
                    .where(payout_request.c.id == item.job.id)
                    .values(
                        status=RequestStatus.SIGNED.value,
                        tx_id=tx_id,
                        net_native=item.net_native.amount,
                        net_usd=item.net_usd.amount,
                        network_fee_native=item.fee_share.amount,
                        network_fee_asset=item.fee_share.asset.code.value,
                        network_fee_usd=item.fee_charged_usd.amount,
                        execution_rate_lock_id=item.execution_lock.id,
                        wait_reason=None,
                        next_attempt_at=None,
                        attempts=item.job.attempts + 1,
                        updated_at=now,
                    )
                )
                self._event(
                    conn,
                    item.job.id,
                    RequestStatus.APPROVED,
                    RequestStatus.SIGNED,
                    f"signed {signed.txid}: {item.net_native.format()} {coin.code} to "
                    f"{item.job.destination}, network fee {item.fee_share.format()} "
                    f"{item.fee_share.asset.code} ({item.fee_usd.format()} USD at "
                    f"{item.execution_lock.rate} USD/{item.fee_share.asset.code}, "
                    f"{item.fee_charged_usd.format()} USD charged)",
                    now,
                )
            return self._load_tx(conn, tx_id)

    def _insert_tx(
        self,
        conn: Connection,
        rail: Rail,
        coin: Asset,
        signed: SignedTx,
        lines: Sequence[PayoutLine],
        shares: Mapping[uuid.UUID, int],
        estimate: FeeEstimate | None,
        replaces: StoredTx | None,
        now: datetime,
    ) -> uuid.UUID:
        tx_id = uuid.uuid4()
        conn.execute(
            insert(payout_tx).values(
                id=tx_id,
                chain=rail.chain.value,
                asset=coin.code.value,
                txid=signed.txid,
                spend_key=signed.spend_key,
                replaces_id=None if replaces is None else replaces.id,
                raw=signed.raw,
                spend=signed.spend_json(),
                fee_native=signed.fee.amount,
                fee_asset=signed.fee.asset.code.value,
                fee_estimate=json.dumps(
                    {}
                    if estimate is None
                    else {
                        "total": estimate.total.amount,
                        "params": dict(estimate.params),
                        "source": estimate.source,
                    }
                ),
                status="signed",
                expires_at=signed.expires_at,
                created_at=now,
                updated_at=now,
            )
        )
        for line in lines:
            conn.execute(
                insert(payout_tx_line).values(
                    tx_id=tx_id,
                    request_id=line.request_id,
                    destination=line.destination,
                    amount_native=line.amount.amount,
                    fee_share_native=shares.get(line.request_id, 0),
                    output_index=signed.outputs.get(line.request_id),
                )
            )
        return tx_id

    def _load_tx(self, conn: Connection, tx_id: uuid.UUID) -> StoredTx:
        row = conn.execute(select(payout_tx).where(payout_tx.c.id == tx_id)).one()
        lines = conn.execute(
            select(payout_tx_line)
            .where(payout_tx_line.c.tx_id == tx_id)
            .order_by(payout_tx_line.c.output_index, payout_tx_line.c.request_id)
        ).all()
        return _stored(row, lines)

    # ------------------------------------------------------------------ broadcasting

    def _broadcast(self, rail: Rail, tx: StoredTx, report: RoundReport) -> BroadcastOutcome:
        result = rail.broadcast(tx)
        with self._unit() as conn:
            now = self.clock.now(conn)
            if result.outcome is BroadcastOutcome.ACCEPTED:
                self._mark_broadcast(conn, tx, now)
                report.broadcast.append(tx.txid)
            else:
                conn.execute(
                    update(payout_tx)
                    .where(payout_tx.c.id == tx.id)
                    .values(last_error=f"{result.outcome.value}: {result.detail}", updated_at=now)
                )
                level = (
                    logging.INFO if result.outcome is BroadcastOutcome.DEFERRED else logging.WARNING
                )
                log.log(
                    level, "broadcast of %s %s: %s", tx.txid, result.outcome.value, result.detail
                )
        if result.outcome is BroadcastOutcome.ACCEPTED:
            self._crash("after_broadcast")
        return result.outcome

    def _mark_broadcast(self, conn: Connection, tx: StoredTx, now: datetime) -> None:
        row = conn.execute(
            select(payout_tx.c.status, payout_tx.c.broadcast_count)
            .where(payout_tx.c.id == tx.id)
            .with_for_update()
        ).one()
        if row.status not in IN_FLIGHT:
            return  # another worker settled it since this one read it: nothing to mark
        values: dict[str, Any] = {
            "broadcast_count": int(row.broadcast_count) + 1,
            "last_error": None,
            "updated_at": now,
        }
        if row.status == "signed":
            values |= {"status": "broadcast", "broadcast_at": now}
        conn.execute(update(payout_tx).where(payout_tx.c.id == tx.id).values(**values))
        for line in tx.lines:
            self._move(conn, line.request_id, RequestStatus.BROADCAST, f"broadcast {tx.txid}", now)

    def _move(
        self,
        conn: Connection,
        request_id: uuid.UUID,
        new: RequestStatus,
        reason: str,
        now: datetime,
        **values: Any,
    ) -> bool:
        """Move a request (row-locked) to ``new`` unless it is there already."""
        row = conn.execute(
            select(payout_request.c.status)
            .where(payout_request.c.id == request_id)
            .with_for_update()
        ).one()
        old = RequestStatus(row.status)
        if old is new:
            return False
        check_transition(old, new)
        conn.execute(
            update(payout_request)
            .where(payout_request.c.id == request_id)
            .values(status=new.value, updated_at=now, **values)
        )
        self._event(conn, request_id, old, new, reason, now)
        return True

    def _event(
        self,
        conn: Connection,
        request_id: uuid.UUID,
        old: RequestStatus | None,
        new: RequestStatus,
        reason: str,
        now: datetime,
    ) -> None:
        conn.execute(
            insert(payout_event).values(
                request_id=request_id,
                from_status=None if old is None else old.value,
                to_status=new.value,
                actor=self.worker_id,
                reason=reason,
                at=now,
            )
        )

    # ------------------------------------------------------------------ in flight

    def advance_in_flight(self, report: RoundReport) -> None:
        with self._unit() as conn:
            rows = conn.execute(
                select(payout_tx)
                .where(payout_tx.c.status.in_(IN_FLIGHT))
                .order_by(payout_tx.c.created_at)
            ).all()
            stored = [
                _stored(
                    row,
                    conn.execute(
                        select(payout_tx_line)
                        .where(payout_tx_line.c.tx_id == row.id)
                        .order_by(payout_tx_line.c.output_index, payout_tx_line.c.request_id)
                    ).all(),
                )
                for row in rows
            ]
            statuses = {row.id: row.status for row in rows}
        for tx in stored:
            rail = self.rails.get(tx.chain)
            if rail is None:
                continue
            try:
                status = rail.status(tx)
                self._advance(rail, tx, statuses[tx.id], status, report)
            except RailUnavailable as error:
                log.warning("status of %s unavailable: %s", tx.txid, error)
            except Exception as error:  # one transaction's trouble must not stop the others
                log.exception("payout transaction %s could not be advanced", tx.txid)
                report.errors.append(f"{tx.txid}: {type(error).__name__}: {error}")

    def _advance(
        self, rail: Rail, tx: StoredTx, stored_status: str, status: TxStatus, report: RoundReport
    ) -> None:
        state = status.state
        if state is TxState.UNKNOWN:
            if self._broadcast(rail, tx, report) is BroadcastOutcome.REJECTED:
                # The node will not take it (e.g. evicted when fees rose, and now too cheap
                # to re-enter): once stuck long enough, it is replaced like a pending one.
                self._maybe_replace(rail, tx, report)
        elif state in (TxState.PENDING, TxState.MINED):
            if stored_status == "signed":
                with self._unit() as conn:
                    self._mark_broadcast(conn, tx, self.clock.now(conn))
            if state is TxState.PENDING:
                self._maybe_replace(rail, tx, report)
        elif state is TxState.FINAL:
            self._crash("before_confirm")
            self._settle_final(rail, tx, status, report)
        elif state is TxState.FAILED:
            self._settle_failed(rail, tx, status, report)
        else:
            self._settle_dead(rail, tx, status, report)

    def _lock_in_flight(self, conn: Connection, tx: StoredTx) -> bool:
        """Lock every version (fee bumps) of ``tx``'s spend, in one order, and say whether
        ``tx`` is still in flight. Locking all of them makes two workers settling two
        versions at once take turns: each then sees what the other decided."""
        rows = conn.execute(
            select(payout_tx.c.id, payout_tx.c.status)
            .where(payout_tx.c.chain == tx.chain.value, payout_tx.c.spend_key == tx.spend_key)
            .order_by(payout_tx.c.id)
            .with_for_update()
        ).all()
        return any(row.id == tx.id and row.status in IN_FLIGHT for row in rows)

    def _retire_siblings(self, conn: Connection, tx: StoredTx, now: datetime) -> None:
        """``tx`` was mined (paid or reverted): every other version of its spend is dead."""
        for sibling in self._siblings(conn, tx):
            if sibling.status in IN_FLIGHT:
                conn.execute(
                    update(payout_tx)
                    .where(payout_tx.c.id == sibling.id)
                    .values(
                        status="dead",
                        last_error=f"replaced: {tx.txid} spent the same identity",
                        settled_at=now,
                        updated_at=now,
                    )
                )

    def _siblings(self, conn: Connection, tx: StoredTx) -> Sequence[Any]:
        """Other versions (fee bumps) of ``tx``'s spend."""
        return conn.execute(
            select(payout_tx.c.id, payout_tx.c.status, payout_tx.c.txid).where(
                payout_tx.c.chain == tx.chain.value,
                payout_tx.c.spend_key == tx.spend_key,
                payout_tx.c.id != tx.id,
            )
        ).all()

    def _maybe_replace(self, rail: Rail, tx: StoredTx, report: RoundReport) -> None:
        worker = self.settings.worker
        with self._unit() as conn:
            now = self.clock.now(conn)
            since = tx.broadcast_at or tx.created_at
            if now - since < timedelta(seconds=worker.stuck_after_seconds):
                return
            if not self._lock_in_flight(conn, tx):
                return
            newer = conn.execute(
                select(payout_tx.c.id).where(payout_tx.c.replaces_id == tx.id)
            ).first()
            if newer is not None:
                return
            signed = rail.replacement(conn, tx, bump_percent=worker.bump_percent, now=now)
            if signed is None:
                return
            coin = tx.lines[0].amount.asset
            shares = {
                row.request_id: int(row.fee_share_native)
                for row in conn.execute(
                    select(payout_tx_line.c.request_id, payout_tx_line.c.fee_share_native).where(
                        payout_tx_line.c.tx_id == tx.id
                    )
                )
            }
            new_id = self._insert_tx(conn, rail, coin, signed, tx.lines, shares, None, tx, now)
            for line in tx.lines:
                conn.execute(
                    update(payout_request)
                    .where(payout_request.c.id == line.request_id)
                    .values(tx_id=new_id, updated_at=now)
                )
            replacement = self._load_tx(conn, new_id)
        log.info("replaced stuck %s with %s", tx.txid, signed.txid)
        report.replaced.append(signed.txid)
        self._broadcast(rail, replacement, report)

    def _record_mined(
        self, conn: Connection, rail: Rail, tx: StoredTx, status: TxStatus, now: datetime
    ) -> list[Money]:
        """Record ``tx`` as mined (FINAL: confirmed; FAILED: failed) with its block and the fee
        the chain took, retire the other versions of its spend, let the rail settle what it
        reserved; return each line's share of the fee paid."""
        fee_paid = status.fee_paid if status.fee_paid is not None else tx.fee
        failed = status.state is TxState.FAILED
        conn.execute(
            update(payout_tx)
            .where(payout_tx.c.id == tx.id)
            .values(
                status="failed" if failed else "confirmed",
                block_number=status.block_number,
                block_hash=status.block_hash,
                fee_paid_native=fee_paid.amount,
                settled_at=now,
                updated_at=now,
                **({"last_error": status.detail} if failed else {}),
            )
        )
        self._retire_siblings(conn, tx, now)
        rail.settle(conn, tx, status.state)
        return _split(fee_paid, len(tx.lines))

    def _settle_final(
        self, rail: Rail, tx: StoredTx, status: TxStatus, report: RoundReport
    ) -> None:
        with self._unit() as conn:
            now = self.clock.now(conn)
            if not self._lock_in_flight(conn, tx):
                return
            shares = self._record_mined(conn, rail, tx, status, now)
            for line, paid_share in zip(tx.lines, shares, strict=True):
                if self._confirm_request(conn, rail, tx, line, paid_share, now):
                    report.confirmed.append(line.request_id)

    def _confirm_request(
        self,
        conn: Connection,
        rail: Rail,
        tx: StoredTx,
        line: PayoutLine,
        fee_paid: Money,
        now: datetime,
    ) -> bool:
        row = conn.execute(
            select(payout_request).where(payout_request.c.id == line.request_id).with_for_update()
        ).one()
        if row.status == RequestStatus.CONFIRMED.value:
            return False
        if row.status == RequestStatus.SIGNED.value:
            self._move(conn, row.id, RequestStatus.BROADCAST, f"broadcast {tx.txid}", now)
        coin = asset(row.asset)
        fee_asset = fee_paid.asset
        lock = get_lock(conn, row.execution_rate_lock_id)
        fee_paid_usd = lock.usd_charge_for(fee_paid)
        gross = Money(row.gross_usd, USD)
        fees = Money(row.fees_usd, USD)
        charged = Money(row.network_fee_usd, USD)
        net_usd = Money(row.net_usd, USD)
        net_native = Money(row.net_native, coin)
        holds.capture_hold(
            conn,
            row.hold_id,
            now=now,
            request=None,
            memo=f"{row.kind} {row.id} paid by {tx.txid}",
            actor=self.worker_id,
        )
        chain = rail.chain.value
        legs = _merge(
            [
                Leg(clearing(conn, now), gross),
                Leg(house.revenue(conn, USD, now).id, -fees),
                Leg(house.network_fees(conn, USD, now).id, -charged),
                Leg(house.fx(conn, coin, USD, now).id, -net_usd),
                Leg(house.fx(conn, coin, coin, now).id, net_native),
                Leg(house.hot_wallet(conn, chain, coin, now).id, -net_native),
                *_fee_paid_legs(conn, chain, fee_paid, fee_paid_usd, now),
            ]
        )
        post(
            conn,
            legs,
            kind=TransactionKind.PAYOUT,
            now=now,
            request=Request.of(
                IdempotencyKey("system", f"payout:{row.id}:settle"),
                "payouts.settle",
                {"request": str(row.id), "tx": tx.txid},
            ),
            memo=f"{row.kind} of {net_native.format()} {coin.code} to {row.destination}",
            actor=self.worker_id,
            metadata={
                "payout_request_id": str(row.id),
                "txid": tx.txid,
                "chain": chain,
                "network_fee_charged_usd": charged.format(),
                "network_fee_paid": f"{fee_paid.format()} {fee_asset.code}",
                "network_fee_paid_usd": fee_paid_usd.format(),
                "execution_rate_lock_id": str(lock.id),
            },
        )
        self._move(
            conn,
            row.id,
            RequestStatus.CONFIRMED,
            f"confirmed on chain ({tx.txid}); network fee paid {fee_paid.format()} "
            f"{fee_asset.code} ({fee_paid_usd.format()} USD; {charged.format()} USD charged)",
            now,
            network_fee_paid_native=fee_paid.amount,
            settled_at=now,
            claimed_by=None,
            lease_until=None,
        )
        return True

    def _settle_failed(
        self, rail: Rail, tx: StoredTx, status: TxStatus, report: RoundReport
    ) -> None:
        """Mined but did not pay (a reverted token transfer): the payouts fail, the funds
        return, and the fee the chain burnt is booked as the house's cost."""
        with self._unit() as conn:
            now = self.clock.now(conn)
            if not self._lock_in_flight(conn, tx):
                return
            shares = self._record_mined(conn, rail, tx, status, now)
            for line, paid_share in zip(tx.lines, shares, strict=True):
                row = conn.execute(
                    select(payout_request)
                    .where(payout_request.c.id == line.request_id)
                    .with_for_update()
                ).one()
                if row.status not in (RequestStatus.SIGNED.value, RequestStatus.BROADCAST.value):
                    continue
                if paid_share.is_positive:
                    lock = get_lock(conn, row.execution_rate_lock_id)
                    usd = lock.usd_charge_for(paid_share)
                    post(
                        conn,
                        _merge(_fee_paid_legs(conn, rail.chain.value, paid_share, usd, now)),
                        kind=TransactionKind.PAYOUT,
                        now=now,
                        request=Request.of(
                            IdempotencyKey("system", f"payout:{row.id}:failed-fee:{tx.txid}"),
                            "payouts.failed_fee",
                            {"request": str(row.id), "tx": tx.txid},
                        ),
                        memo=f"network fee of failed payout transaction {tx.txid}",
                        actor=self.worker_id,
                        metadata={"payout_request_id": str(row.id), "txid": tx.txid},
                    )
                self._fail(
                    conn,
                    row,
                    f"transaction {tx.txid} was mined but did not pay: {status.detail}",
                    now,
                    network_fee_paid_native=paid_share.amount,
                )
                report.failed.append(row.id)

    def _settle_dead(self, rail: Rail, tx: StoredTx, status: TxStatus, report: RoundReport) -> None:
        """Proven never to be included: free what it reserved; if no other version of the
        same spend is alive, its payouts go back to approved and are signed anew."""
        with self._unit() as conn:
            now = self.clock.now(conn)
            if not self._lock_in_flight(conn, tx):
                return
            conn.execute(
                update(payout_tx)
                .where(payout_tx.c.id == tx.id)
                .values(status="dead", last_error=status.detail, settled_at=now, updated_at=now)
            )
            siblings = self._siblings(conn, tx)
            alive = [s for s in siblings if s.status in IN_FLIGHT]
            mined = [s for s in siblings if s.status in ("confirmed", "failed")]
            if alive or mined:
                return  # another version may still (or did) settle the payouts; it decides
            rail.settle(conn, tx, TxState.DEAD)
            for line in tx.lines:
                moved = self._move(
                    conn,
                    line.request_id,
                    RequestStatus.APPROVED,
                    f"transaction {tx.txid} can never be included ({status.detail}); "
                    "it will be signed again",
                    now,
                    tx_id=None,
                    claimed_by=None,
                    lease_until=None,
                    next_attempt_at=None,
                )
                if moved:
                    report.resigned.append(line.request_id)

    # ------------------------------------------------------------------ failing

    def _fail(
        self, conn: Connection, row: Row[Any], reason: str, now: datetime, **values: Any
    ) -> None:
        holds.void_hold(conn, row.hold_id, now=now, request=None)
        self._move(
            conn,
            row.id,
            RequestStatus.FAILED,
            reason + "; the funds are back on the balance",
            now,
            failure_reason=reason,
            settled_at=now,
            claimed_by=None,
            lease_until=None,
            **values,
        )

    def _fail_unsent(self, request_id: uuid.UUID, reason: str, report: RoundReport) -> None:
        """Fail a claimed, approved payout before anything was signed for it."""
        with self._unit() as conn:
            now = self.clock.now(conn)
            row = conn.execute(
                select(payout_request)
                .where(
                    payout_request.c.id == request_id,
                    and_(
                        payout_request.c.status == RequestStatus.APPROVED.value,
                        payout_request.c.claimed_by == self.worker_id,
                    ),
                )
                .with_for_update()
            ).first()
            if row is None:
                return
            self._fail(conn, row, reason, now)
        report.failed.append(request_id)
        log.info("payout %s failed: %s", request_id, reason)


def _fee_paid_legs(
    conn: Connection, chain: str, fee: Money, fee_usd: Money, now: datetime
) -> list[Leg]:
    """The chain fee leaving the hot wallet (native, through the fee asset's FX accounts) as a
    cost on ``house:network-fees:USD`` at ``fee_usd``."""
    return [
        Leg(house.hot_wallet(conn, chain, fee.asset, now).id, -fee),
        Leg(house.fx(conn, fee.asset, fee.asset, now).id, fee),
        Leg(house.fx(conn, fee.asset, USD, now).id, -fee_usd),
        Leg(house.network_fees(conn, USD, now).id, fee_usd),
    ]


def _merge(legs: Iterable[Leg]) -> list[Leg]:
    """One leg per account (amounts added), zero legs dropped."""
    totals: dict[int, Money] = {}
    for leg in legs:
        current = totals.get(leg.account_id)
        totals[leg.account_id] = leg.amount if current is None else current + leg.amount
    return [Leg(account, amount) for account, amount in totals.items() if not amount.is_zero]
