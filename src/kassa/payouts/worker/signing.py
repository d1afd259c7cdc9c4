"""Signing and storing: the step that makes a payout exactly-once.

In one database transaction the worker re-checks its claim on the requests under a row lock
(still ``approved``, still its own, the lease still running), lets the rail allocate the spend
identity (ETH nonce, BTC inputs, TRON reference block) and sign, stores the signed bytes and the
spend, and moves each request to ``signed`` with the rate its real fee is valued at; the request's
committed figures (net coins, net USD, fee charged) are never rewritten. Only after that
commit is anything broadcast (`kassa.payouts.worker.broadcast`): a crash in between leaves
signed bytes that the next round broadcasts, never a second transaction for the same payout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from kassa.money import Asset
from kassa.payouts import store
from kassa.payouts.model import RequestStatus
from kassa.payouts.rails.base import FeeEstimate, PayoutLine, Rail, StoredTx
from kassa.payouts.worker import claims
from kassa.payouts.worker.context import WorkerContext
from kassa.payouts.worker.pricing import Priced
from kassa.payouts.worker.transactions import insert_tx, load_tx

log = logging.getLogger(__name__)


def sign_and_store(
    ctx: WorkerContext,
    rail: Rail,
    coin: Asset,
    priced: Sequence[Priced],
    lines: Sequence[PayoutLine],
    estimate: FeeEstimate,
) -> StoredTx | None:
    """Sign one transaction paying ``lines`` and store it with its requests ``signed``; None
    (nothing signed) when the claim on any of them was lost meanwhile."""
    ids = [item.job.id for item in priced]
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        if len(claims.held(conn, ctx, ids, lease_after=now)) != len(ids):
            log.warning("payout claim lost before signing: %s", ids)
            return None
        signed = rail.sign(conn, coin, lines, estimate, now=now)
        shares = {item.job.id: item.fee_share.amount for item in priced}
        tx_id = insert_tx(conn, rail, coin, signed, lines, shares, estimate, None, now)
        for item in priced:
            fee = item.fee_share
            store.move(
                conn,
                item.job.id,
                RequestStatus.SIGNED,
                actor=ctx.worker_id,
                reason=f"signed {signed.txid}: {item.net_native.format()} {coin.code} to "
                f"{item.job.destination} (as committed), network fee {fee.format()} "
                f"{fee.asset.code} ({item.fee_usd.format()} USD at {item.execution_lock.rate} "
                f"USD/{fee.asset.code}, paid by the house; "
                f"{item.job.network_fee_usd.format()} USD charged)",
                now=now,
                tx_id=tx_id,
                execution_rate_lock_id=item.execution_lock.id,
                wait_reason=None,
                next_attempt_at=None,
                attempts=item.job.attempts + 1,
            )
        return load_tx(conn, tx_id)
