"""Settling payouts: in the books once the chain decided, and failing the ones it never will pay.

Money: the request reserved ``gross_usd`` by a hold. On confirmation the hold is captured into
``clearing:payouts:USD`` and one journal transaction clears it: fees to revenue, the network fee
charged to ``house:network-fees:USD``, the net out through the FX accounts and the hot wallet,
and the fee the chain actually charged (valued at the payout-time rate) from the hot wallet to
``house:network-fees:USD`` — so that account's balance is exactly what fees cost the house
beyond what customers paid for them.

A *failed* transaction (mined, but a reverted token transfer) fails its payouts — their holds are
voided, the funds return — and books the fee the chain burnt as the house's cost. A *dead* one
(proven never to be included) frees its spend identity and sends its payouts back to
``approved`` to be signed anew, but only when no other version of the same spend (a fee bump) is
still alive or was mined: that version decides. Every settlement first locks all versions of the
spend (`transactions.lock_in_flight`) and does nothing if another worker settled it meanwhile.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from kassa.ledger import holds, house
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.model import TransactionKind
from kassa.ledger.transfers import Leg, post
from kassa.money import USD, Money, asset
from kassa.payouts import store
from kassa.payouts.model import PayoutRequest, RequestStatus
from kassa.payouts.rails.base import IN_FLIGHT, PayoutLine, Rail, StoredTx, TxState, TxStatus
from kassa.payouts.worker import claims, transactions
from kassa.payouts.worker.context import WorkerContext
from kassa.payouts.worker.report import RoundReport
from kassa.pricing.locks import RateLock, get_lock

log = logging.getLogger(__name__)


def settle_final(
    ctx: WorkerContext, rail: Rail, tx: StoredTx, status: TxStatus, report: RoundReport
) -> None:
    """Final on chain: every payout of ``tx`` is confirmed and booked."""
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        if not transactions.lock_in_flight(conn, tx):
            return
        shares = _record_mined(conn, rail, tx, status, now)
        for line, paid_share in zip(tx.lines, shares, strict=True):
            if _confirm_request(ctx, conn, rail, tx, line, paid_share, now):
                report.confirmed.append(line.request_id)


def settle_failed(
    ctx: WorkerContext, rail: Rail, tx: StoredTx, status: TxStatus, report: RoundReport
) -> None:
    """Mined but did not pay (a reverted token transfer): the payouts fail, the funds
    return, and the fee the chain burnt is booked as the house's cost."""
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        if not transactions.lock_in_flight(conn, tx):
            return
        shares = _record_mined(conn, rail, tx, status, now)
        for line, paid_share in zip(tx.lines, shares, strict=True):
            request = store.get(conn, line.request_id, for_update=True)
            if request.status not in (RequestStatus.SIGNED, RequestStatus.BROADCAST):
                continue
            if paid_share.is_positive:
                usd = _execution_lock(conn, request).usd_charge_for(paid_share)
                post(
                    conn,
                    _merge(_fee_paid_legs(conn, rail.chain.value, paid_share, usd, now)),
                    kind=TransactionKind.PAYOUT,
                    now=now,
                    request=Request.of(
                        IdempotencyKey("system", f"payout:{request.id}:failed-fee:{tx.txid}"),
                        "payouts.failed_fee",
                        {"request": str(request.id), "tx": tx.txid},
                    ),
                    memo=f"network fee of failed payout transaction {tx.txid}",
                    actor=ctx.worker_id,
                    metadata={"payout_request_id": str(request.id), "txid": tx.txid},
                )
            _fail(
                ctx,
                conn,
                request.id,
                f"transaction {tx.txid} was mined but did not pay: {status.detail}",
                now,
                network_fee_paid_native=paid_share.amount,
            )
            report.failed.append(request.id)


def settle_dead(
    ctx: WorkerContext, rail: Rail, tx: StoredTx, status: TxStatus, report: RoundReport
) -> None:
    """Proven never to be included: free what it reserved; if no other version of the
    same spend is alive, its payouts go back to approved and are signed anew."""
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        if not transactions.lock_in_flight(conn, tx):
            return
        transactions.update_tx(
            conn, tx.id, now, status="dead", last_error=status.detail, settled_at=now
        )
        others = transactions.siblings(conn, tx)
        alive = [s for s in others if s.status in IN_FLIGHT]
        mined = [s for s in others if s.status in ("confirmed", "failed")]
        if alive or mined:
            return  # another version may still (or did) settle the payouts; it decides
        rail.settle(conn, tx, TxState.DEAD)
        for line in tx.lines:
            moved = store.move(
                conn,
                line.request_id,
                RequestStatus.APPROVED,
                actor=ctx.worker_id,
                reason=f"transaction {tx.txid} can never be included ({status.detail}); "
                "it will be signed again",
                now=now,
                idempotent=True,
                tx_id=None,
                claimed_by=None,
                lease_until=None,
                next_attempt_at=None,
            )
            if moved:
                report.resigned.append(line.request_id)


def fail_unsent(
    ctx: WorkerContext, request_id: uuid.UUID, reason: str, report: RoundReport
) -> None:
    """Fail a claimed, approved payout before anything was signed for it."""
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        if not claims.held(conn, ctx, [request_id]):
            return
        _fail(ctx, conn, request_id, reason, now)
    report.failed.append(request_id)
    log.info("payout %s failed: %s", request_id, reason)


def _fail(
    ctx: WorkerContext,
    conn: Connection,
    request_id: uuid.UUID,
    reason: str,
    now: datetime,
    **values: Any,
) -> None:
    """Fail the request: its hold is voided (`store.move`) and the funds return."""
    store.move(
        conn,
        request_id,
        RequestStatus.FAILED,
        actor=ctx.worker_id,
        reason=reason + "; the funds are back on the balance",
        now=now,
        idempotent=True,
        failure_reason=reason,
        settled_at=now,
        claimed_by=None,
        lease_until=None,
        **values,
    )


def _record_mined(
    conn: Connection, rail: Rail, tx: StoredTx, status: TxStatus, now: datetime
) -> list[Money]:
    """Record ``tx`` as mined (FINAL: confirmed; FAILED: failed) with its block and the fee
    the chain took, retire the other versions of its spend, let the rail settle what it
    reserved; return each line's share of the fee paid."""
    fee_paid = status.fee_paid if status.fee_paid is not None else tx.fee
    failed = status.state is TxState.FAILED
    transactions.update_tx(
        conn,
        tx.id,
        now,
        status="failed" if failed else "confirmed",
        block_number=status.block_number,
        block_hash=status.block_hash,
        fee_paid_native=fee_paid.amount,
        settled_at=now,
        **({"last_error": status.detail} if failed else {}),
    )
    transactions.retire_siblings(conn, tx, now)
    rail.settle(conn, tx, status.state)
    return _split(fee_paid, len(tx.lines))


def _confirm_request(
    ctx: WorkerContext,
    conn: Connection,
    rail: Rail,
    tx: StoredTx,
    line: PayoutLine,
    fee_paid: Money,
    now: datetime,
) -> bool:
    """Capture the request's hold and book the payout; False if it was confirmed before."""
    request = store.get(conn, line.request_id, for_update=True)
    if request.status is RequestStatus.CONFIRMED:
        return False
    if request.status is RequestStatus.SIGNED:
        store.move(
            conn,
            request.id,
            RequestStatus.BROADCAST,
            actor=ctx.worker_id,
            reason=f"broadcast {tx.txid}",
            now=now,
            idempotent=True,
        )
    coin = asset(request.asset)
    fee_asset = fee_paid.asset
    lock = _execution_lock(conn, request)
    fee_paid_usd = lock.usd_charge_for(fee_paid)
    charged = request.network_fee_usd
    net_native = request.net_native
    holds.capture_hold(
        conn,
        request.hold_id,
        now=now,
        request=None,
        memo=f"{request.kind} {request.id} paid by {tx.txid}",
        actor=ctx.worker_id,
    )
    chain = rail.chain.value
    legs = _merge(
        [
            Leg(house.payout_clearing(conn, now).id, request.gross_usd),
            Leg(house.revenue(conn, USD, now).id, -request.fees_usd),
            Leg(house.network_fees(conn, USD, now).id, -charged),
            Leg(house.fx(conn, coin, USD, now).id, -request.net_usd),
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
            IdempotencyKey("system", f"payout:{request.id}:settle"),
            "payouts.settle",
            {"request": str(request.id), "tx": tx.txid},
        ),
        memo=f"{request.kind} of {net_native.format()} {coin.code} to {request.destination}",
        actor=ctx.worker_id,
        metadata={
            "payout_request_id": str(request.id),
            "txid": tx.txid,
            "chain": chain,
            "network_fee_charged_usd": charged.format(),
            "network_fee_paid": f"{fee_paid.format()} {fee_asset.code}",
            "network_fee_paid_usd": fee_paid_usd.format(),
            "execution_rate_lock_id": str(lock.id),
        },
    )
    store.move(
        conn,
        request.id,
        RequestStatus.CONFIRMED,
        actor=ctx.worker_id,
        reason=f"confirmed on chain ({tx.txid}); network fee paid {fee_paid.format()} "
        f"{fee_asset.code} ({fee_paid_usd.format()} USD; {charged.format()} USD charged)",
        now=now,
        idempotent=True,
        network_fee_paid_native=fee_paid.amount,
        settled_at=now,
        claimed_by=None,
        lease_until=None,
    )
    return True


def _execution_lock(conn: Connection, request: PayoutRequest) -> RateLock:
    """The payout-time rate lock the request's fee was priced at when it was signed."""
    if request.execution_rate_lock_id is None:
        raise RuntimeError(f"payout {request.id} was settled without an execution rate lock")
    return get_lock(conn, request.execution_rate_lock_id)


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


def _split(total: Money, count: int) -> list[Money]:
    """``total`` in ``count`` shares that add up exactly (remainder on the first ones)."""
    base, remainder = divmod(total.amount, count)
    return [Money(base + (1 if i < remainder else 0), total.asset) for i in range(count)]
