"""Deposits from the mempool: ``seen`` before any block, ``dropped`` when they leave it unmined.

A `MempoolTracker` runs beside the chain's block watcher, in its own thread with a short
interval (`run_forever`), so a payment is announced (``deposit.seen`` and its webhook) within
about a second of reaching the node, while block scanning keeps its own pace. One pass:

1. Ask the `MempoolSource` for the pool: every txid in it, and the transfers to watched
   addresses. Each new one is recorded as ``seen`` with no block and the first-seen time now
   (`records.record_pending`); a known one is left alone, so passes are idempotent.
2. The mempool and the block scan key a transfer alike (chain, txid, position), so when the
   transaction is mined the block scan finds the same deposit and moves it on (confirming,
   credited) — its first-seen time, the payment time its rate is locked at, stays.
3. A seen deposit without a block whose transaction is missing from the pool for
   ``drop_after_seconds`` is looked up on the node (`MempoolSource.fate`): still pending or
   mined (the block scan will get it) → nothing; mined into a block the watcher has already
   scanned without the transfer (a reverted token call) → ``ignored``; unknown → ``dropped``
   with the node's reason (replaced, double-spent, evicted). A dropped transaction that is
   mined or returns to the pool later is ``seen`` again.

Nothing here touches the ledger: only a final block credits.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kassa.chains.network import Chain
from kassa.chains.scanning import Fate, MempoolSource
from kassa.clock import Clock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.addresses import match_key
from kassa.deposits.model import DepositStatus
from kassa.deposits.tables import watcher_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    chain: Chain
    interval_seconds: float = 0.5
    drop_after_seconds: float = 60.0
    """How long a seen transaction may be missing from the pool before the node is asked
    what became of it (a node restart empties its pool; rebroadcasts take a while)."""


@dataclass(slots=True)
class PoolReport:
    seen: list[uuid.UUID] = field(default_factory=list)
    dropped: list[uuid.UUID] = field(default_factory=list)
    ignored: list[uuid.UUID] = field(default_factory=list)


class MempoolTracker:
    def __init__(
        self, database: Database, clock: Clock, source: MempoolSource, config: MempoolConfig
    ) -> None:
        if source.chain is not config.chain:
            raise ValueError(f"a {source.chain} mempool cannot serve the {config.chain} watcher")
        self.database = database
        self.clock = clock
        self.source = source
        self.config = config
        self.chain = config.chain
        self._watched: dict[str, int] = {}
        """Match key → deposit address id (`addresses.watched`)."""
        self._watched_keys: frozenset[str] = frozenset()
        self._watched_after = 0
        self._missing_since: dict[uuid.UUID, datetime] = {}

    def tick(self) -> PoolReport:
        report = PoolReport()
        self._refresh_watched()
        snapshot = self.source.pool(self._watched_keys)
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            paid = [
                (transfer, address_id)
                for transfer in snapshot.transfers
                if transfer.amount > 0
                and (address_id := self._watched.get(match_key(self.chain, transfer.to_address)))
                is not None
            ]
            customers = addresses.owners(conn, [address_id for _, address_id in paid])
            for transfer, address_id in paid:
                recorded = records.record_pending(
                    conn,
                    transfer,
                    deposit_address_id=address_id,
                    customer_account_id=customers[address_id].customer_account_id,
                    now=now,
                )
                if recorded is not None:
                    report.seen.append(recorded.id)
            unmined = records.unmined(conn, self.chain)
        still = {d.id for d in unmined}
        self._missing_since = {k: v for k, v in self._missing_since.items() if k in still}
        for current in unmined:
            if current.txid in snapshot.txids:
                self._missing_since.pop(current.id, None)
                continue
            since = self._missing_since.setdefault(current.id, now)
            if now - since < timedelta(seconds=self.config.drop_after_seconds):
                continue
            self._judge(current, report)
        if report.seen or report.dropped or report.ignored:
            log.info(
                "%s mempool: %d seen, %d dropped, %d ignored",
                self.chain,
                len(report.seen),
                len(report.dropped),
                len(report.ignored),
            )
        return report

    def _judge(self, current: records.Deposit, report: PoolReport) -> None:
        """Ask the node what became of a seen deposit's transaction, and act on it."""
        fate = self.source.fate(current.txid)
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            if fate.fate is Fate.GONE:
                if records.leave_pool(
                    conn,
                    current.id,
                    DepositStatus.DROPPED,
                    reason=f"left the mempool unmined: {fate.reason}",
                    now=now,
                ):
                    report.dropped.append(current.id)
                return
            if fate.fate is Fate.MINED and fate.height is not None:
                scanned = conn.execute(
                    select(watcher_checkpoint.c.height).where(
                        watcher_checkpoint.c.chain == self.chain.value
                    )
                ).scalar_one_or_none()
                if scanned is not None and fate.height <= scanned:
                    if records.leave_pool(
                        conn,
                        current.id,
                        DepositStatus.IGNORED,
                        reason=f"mined in block {fate.height} without this transfer "
                        "(the transaction failed on chain)",
                        now=now,
                    ):
                        report.ignored.append(current.id)
                    return
            # Pending or mined ahead of the block scan: look again after another grace period.
            self._missing_since[current.id] = now

    def _refresh_watched(self) -> None:
        with self.database.transaction() as conn:
            added = addresses.watched(conn, self.chain, self._watched_after)
        if added:
            self._watched.update(added)
            self._watched_keys = frozenset(self._watched)
            self._watched_after = max(added.values())

    def run_forever(
        self, stop: threading.Event, *, leading: Callable[[], bool] = lambda: True
    ) -> None:
        """Pass every ``interval_seconds`` while `leading` (the watcher holds its chain's lease:
        a standby watcher's tracker waits, as its block scan does)."""
        while not stop.is_set():
            try:
                if leading():
                    self.tick()
            except IntegrityError:
                # The block scan recorded the same transfer in the same instant: it is known.
                log.info("%s mempool pass met a deposit recorded meanwhile", self.chain)
            except Exception:
                log.exception("%s mempool pass failed; retrying", self.chain)
            stop.wait(self.config.interval_seconds)
