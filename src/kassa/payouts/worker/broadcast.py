"""Broadcasting: handing the stored, signed bytes to the node — the same bytes every time.

A broadcast happens only after the signed transaction was committed, and is repeated (same
bytes, so the node sees the same transaction) until the chain knows it. An accepted broadcast
moves the transaction to ``broadcast`` and its requests with it; a deferred or rejected one is
only noted (``last_error``): the in-flight stage decides what happens next.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from kassa.payouts import store
from kassa.payouts.model import RequestStatus
from kassa.payouts.rails.base import IN_FLIGHT, BroadcastOutcome, Rail, StoredTx
from kassa.payouts.worker.context import WorkerContext
from kassa.payouts.worker.report import RoundReport
from kassa.payouts.worker.transactions import lock_tx, update_tx

log = logging.getLogger(__name__)


def broadcast(
    ctx: WorkerContext, rail: Rail, tx: StoredTx, report: RoundReport
) -> BroadcastOutcome:
    result = rail.broadcast(tx)
    with ctx.unit() as conn:
        now = ctx.clock.now(conn)
        if result.outcome is BroadcastOutcome.ACCEPTED:
            mark_broadcast(ctx, conn, tx, now)
            report.broadcast.append(tx.txid)
        else:
            update_tx(conn, tx.id, now, last_error=f"{result.outcome.value}: {result.detail}")
            level = logging.INFO if result.outcome is BroadcastOutcome.DEFERRED else logging.WARNING
            log.log(level, "broadcast of %s %s: %s", tx.txid, result.outcome.value, result.detail)
    if result.outcome is BroadcastOutcome.ACCEPTED:
        ctx.crash("after_broadcast")
    return result.outcome


def mark_broadcast(ctx: WorkerContext, conn: Connection, tx: StoredTx, now: datetime) -> None:
    """The node has ``tx``: count the broadcast, and move a signed one (and its requests) to
    ``broadcast``."""
    status, broadcast_count = lock_tx(conn, tx.id)
    if status not in IN_FLIGHT:
        return  # another worker settled it since this one read it: nothing to mark
    values: dict[str, Any] = {"broadcast_count": broadcast_count + 1, "last_error": None}
    if status == "signed":
        values |= {"status": "broadcast", "broadcast_at": now}
    update_tx(conn, tx.id, now, **values)
    for line in tx.lines:
        store.move(
            conn,
            line.request_id,
            RequestStatus.BROADCAST,
            actor=ctx.worker_id,
            reason=f"broadcast {tx.txid}",
            now=now,
            idempotent=True,
        )
