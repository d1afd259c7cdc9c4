"""Advancing what is in flight: every stored transaction that is signed or broadcast is asked
about (`Rail.status`) once a round.

* unknown to the node — (re)broadcast with the *same bytes*; if the node refuses them (evicted
  when fees rose, and now too cheap to re-enter), it is replaced like a stuck one;
* pending or mined — a signed one is marked broadcast; a pending one stuck longer than
  ``stuck_after_seconds`` gets a replacement with a fee ``bump_percent`` higher that spends the
  same identity (same ETH nonce, same BTC inputs), so at most one of them is ever mined;
* final, failed or dead — settled (`kassa.payouts.worker.settlement`).

One transaction's trouble (a node down, an unexpected error) is logged and the others go on.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import Connection

from kassa.assets import Chain
from kassa.money import Money
from kassa.payouts import store
from kassa.payouts.rails.base import (
    BroadcastOutcome,
    Rail,
    RailUnavailable,
    StoredTx,
    TxState,
    TxStatus,
)
from kassa.payouts.worker.broadcast import broadcast, mark_broadcast
from kassa.payouts.worker.context import WorkerContext
from kassa.payouts.worker.pricing import fee_wait_reason_for
from kassa.payouts.worker.report import RoundReport
from kassa.payouts.worker.settlement import settle_dead, settle_failed, settle_final
from kassa.payouts.worker.transactions import (
    fee_shares,
    has_replacement,
    in_flight,
    insert_tx,
    load_tx,
    lock_in_flight,
)
from kassa.telemetry.logs import bound

log = logging.getLogger(__name__)


def advance_in_flight(ctx: WorkerContext, rails: Mapping[Chain, Rail], report: RoundReport) -> None:
    with ctx.unit() as conn:
        stored = in_flight(conn)
    for tx, stored_status in stored:
        rail = rails.get(tx.chain)
        if rail is None:
            continue
        try:
            with bound(payout=",".join(str(line.request_id) for line in tx.lines)):
                status = rail.status(tx)
                _advance(ctx, rail, tx, stored_status, status, report)
        except RailUnavailable as error:
            log.warning("status of %s unavailable: %s", tx.txid, error)
        except Exception as error:  # one transaction's trouble must not stop the others
            log.exception("payout transaction %s could not be advanced", tx.txid)
            report.errors.append(f"{tx.txid}: {type(error).__name__}: {error}")


def _advance(
    ctx: WorkerContext,
    rail: Rail,
    tx: StoredTx,
    stored_status: str,
    status: TxStatus,
    report: RoundReport,
) -> None:
    state = status.state
    if state is TxState.UNKNOWN:
        if broadcast(ctx, rail, tx, report) is BroadcastOutcome.REJECTED:
            # The node will not take it (e.g. evicted when fees rose, and now too cheap
            # to re-enter): once stuck long enough, it is replaced like a pending one.
            _maybe_replace(ctx, rail, tx, report)
    elif state in (TxState.PENDING, TxState.MINED):
        if stored_status == "signed":
            with ctx.unit() as conn:
                mark_broadcast(ctx, conn, tx, ctx.clock.now(conn))
        if state is TxState.PENDING:
            _maybe_replace(ctx, rail, tx, report)
    elif state is TxState.FINAL:
        ctx.crash("before_confirm")
        settle_final(ctx, rail, tx, status, report)
    elif state is TxState.FAILED:
        settle_failed(ctx, rail, tx, status, report)
    else:
        settle_dead(ctx, rail, tx, status, report)


def _maybe_replace(ctx: WorkerContext, rail: Rail, tx: StoredTx, report: RoundReport) -> None:
    """Replace ``tx`` with a higher fee on the same spend once it is stuck, unless it was
    settled or replaced already; the replacement is stored first, then broadcast."""
    worker = ctx.settings.worker
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        since = tx.broadcast_at or tx.created_at
        if now - since < timedelta(seconds=worker.stuck_after_seconds):
            return
        if not lock_in_flight(conn, tx):
            return
        if has_replacement(conn, tx):
            return
        bump = conn.begin_nested()
        signed = rail.replacement(conn, tx, bump_percent=worker.bump_percent, now=now)
        if signed is None:
            bump.rollback()
            return
        shares = fee_shares(conn, tx.id)
        waiting = _bump_wait_reasons(ctx, conn, tx, signed.fee, shares)
        if waiting:
            # The replacement would pay some request's share past the factor of its quote:
            # it is not stored or sent (the rail's bookings for it are undone), the stuck
            # transaction stays in flight at its fee, and the request says why it waits.
            bump.rollback()
            for request_id, reason in waiting.items():
                store.wait_in_flight(conn, request_id, reason, now)
                report.waiting[request_id] = reason
            return
        bump.commit()
        coin = tx.lines[0].amount.asset
        new_id = insert_tx(conn, rail, coin, signed, tx.lines, shares, None, tx, now)
        store.paid_by(conn, [line.request_id for line in tx.lines], new_id, now)
        replacement = load_tx(conn, new_id)
    log.info("replaced stuck %s with %s", tx.txid, signed.txid)
    report.replaced.append(signed.txid)
    broadcast(ctx, rail, replacement, report)


def _bump_wait_reasons(
    ctx: WorkerContext,
    conn: Connection,
    tx: StoredTx,
    fee: Money,
    shares: Mapping[uuid.UUID, int],
) -> dict[uuid.UUID, str]:
    """The requests of ``tx`` whose share of a replacement paying ``fee`` (split like the
    stuck transaction's) exceeds the configured factor of their quoted fee, with why they wait;
    a request an operator let pay above its quote never waits."""
    total = sum(shares.values())
    waiting: dict[uuid.UUID, str] = {}
    for line in tx.lines:
        request = store.get(conn, line.request_id)
        if request.fee_approved_by is not None:
            continue
        old = shares.get(line.request_id, 0)
        share = Money(fee.amount * old // total if total else fee.amount, fee.asset)
        job_reason = fee_wait_reason_for(
            request.network_fee_native, share, ctx.settings.quotes.fee_wait_percent
        )
        if job_reason is not None:
            waiting[line.request_id] = f"{job_reason} (to replace the stuck {tx.txid})"
    return waiting
