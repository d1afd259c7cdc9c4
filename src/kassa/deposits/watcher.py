"""The chain watcher: scan blocks from a checkpoint, record matching transfers, follow reorgs,
and credit deposits once they are final.

One tick:
1. Ask the node for its head (tip and final height).
2. Reorg check: compare the stored hash of the checkpoint block with the node's; on a mismatch
   walk back through the stored recent blocks to the last common one and rewind there —
   deposits above it leave the chain (credited ones are reversed in the ledger).
3. Scan forward block by block, storing the blocks in batches: one short transaction per
   ``store_batch_blocks`` blocks (their transfers, their hashes, the checkpoint moved to the
   batch's last block, the lease renewed), so a crash loses at most the batch in flight and a
   restart scans it again harmlessly. A block whose parent is not the stored tip means the
   chain moved under us: store what came before it, stop, and the next tick's reorg check
   handles it. A watcher far behind logs its progress (`kassa.deposits.progress`).
   With ``prefetch_blocks`` set (the default), the blocks are fetched and scanned that far
   ahead in a thread (`kassa.deposits.prefetch`) while the tick stores them, and the deposits
   recorded in final blocks are credited at once (step 4) when they make a full
   ``credit_batch`` or the next block is still being fetched, so node requests and decoding
   overlap with database work instead of following it.
   With ``store_batch_blocks`` of 10 or more, a batch of a tenth of it is stored early when
   the next block is still being fetched: the commit then costs no waiting.
4. Settle: deposits in final blocks get their rate lock (payment time = block time, bid side)
   and are credited, ``credit_batch`` deposits per transaction — each its own ledger
   transaction under its own idempotency key — with the rates read once for the whole batch;
   without a rate they wait, saying so, and are retried next tick. A batch's writes go to the
   database together: its rate locks in one statement (`kassa.pricing.locks.lock_rates`), its
   ledger transactions in one round trip (`kassa.ledger.transfers.post_many`), the deposits'
   rows, history and events once per kind (`records.Deferred`); recording a stored batch's
   transfers likewise.

No database transaction is open during a node or price request. A lease on the
checkpoint row keeps a second watcher of the same chain from running the same ticks.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, or_, select, update

from kassa.chains.network import Chain
from kassa.chains.scanning import ChainBlock, ChainHead, ChainScanner, ChainTransfer
from kassa.clock import Clock, offset_of
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.addresses import match_key
from kassa.deposits.mempool import MempoolTracker
from kassa.deposits.prefetch import BlockFeed
from kassa.deposits.progress import Backfill
from kassa.deposits.tables import chain_block, watcher_checkpoint
from kassa.errors import KassaError
from kassa.events import operational
from kassa.money import USD, AssetCode, Money
from kassa.pricing.errors import NoRate
from kassa.pricing.history import RateSample
from kassa.pricing.locks import LockRequest, RateLock, Side, lock_rates
from kassa.pricing.service import PricingService
from kassa.telemetry.logs import bound
from kassa.telemetry.metrics import timed_round

log = logging.getLogger(__name__)


class DeepReorg(KassaError):
    code = "deep_reorg"
    title = "Reorganisation deeper than the watched window"


class WatcherBusy(KassaError):
    code = "watcher_busy"
    title = "Another watcher holds this chain"


@dataclass(frozen=True, slots=True)
class WatcherConfig:
    chain: Chain
    dust: Mapping[str, int] = field(default_factory=dict)
    """Per asset code, the smallest amount credited (minor units); smaller is ignored."""
    start_height: int = 0
    """Where a watcher without a checkpoint starts (a production install sets its birth block)."""
    reorg_window: int = 100
    """Recent block hashes kept; a reorg deeper than this stops the watcher for an operator."""
    max_blocks_per_tick: int = 500
    lease_seconds: int = 60
    lag_alert_blocks: int = 20
    """Blocks behind the node after a tick that fire ``watcher.lagging`` (once per episode)."""
    store_batch_blocks: int = 50
    """Scanned blocks stored per transaction (fewer when a batch has waited
    ``store_batch_seconds`` for the node): one commit per block cost more than fetching it."""
    store_batch_seconds: float = 5.0
    credit_batch: int = 100
    """Final deposits credited per transaction, each still its own ledger transaction."""
    prefetch_blocks: int = 50
    """Blocks fetched and scanned ahead, in a thread, while the tick stores and credits the
    ones before (`kassa.deposits.prefetch`); 0 fetches each block only when it is needed, in
    the tick's own thread. On with the final deposits credited in the fetch's shadow and the
    collector tuned (`kassa.collector`), it raised the watcher's rate by 15-50 % on
    mainnet-sized blocks (docs/benchmarks.md, "Headers, the collector and the fetch's
    shadow")."""
    progress_seconds: float = 10.0
    """Between two progress lines of a watcher catching up from far behind."""


@dataclass(slots=True)
class TickReport:
    head: int = -1
    scanned: int = 0
    recorded: int = 0
    rewound_to: int | None = None
    credited: list[uuid.UUID] = field(default_factory=list)
    waiting_for_rate: int = 0


@dataclass(frozen=True, slots=True)
class _Priced:
    """A final deposit ready to credit: its block, and its lock or the sample to lock."""

    deposit: records.Deposit
    block_hash: str
    confirmations: int
    price: RateLock | RateSample


@dataclass(frozen=True, slots=True)
class Checkpoint:
    height: int
    block_hash: str


@dataclass(frozen=True, slots=True)
class WatcherStatus:
    chain: Chain
    scanned_height: int
    head_height: int | None
    final_height: int | None
    lag: int | None
    """Blocks the node has that the watcher has not scanned yet."""
    last_tick_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    owner: str | None


def watcher_status(conn: Connection) -> list[WatcherStatus]:
    """Every chain's watcher as last recorded (nothing for a chain never watched)."""
    rows = conn.execute(select(watcher_checkpoint).order_by(watcher_checkpoint.c.chain)).all()
    return [
        WatcherStatus(
            chain=Chain(row.chain),
            scanned_height=int(row.height),
            head_height=row.head_height,
            final_height=row.final_height,
            lag=None if row.head_height is None else max(int(row.head_height) - int(row.height), 0),
            last_tick_at=row.last_tick_at,
            last_error=row.last_error,
            last_error_at=row.last_error_at,
            owner=row.lease_owner,
        )
        for row in rows
    ]


class Watcher:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        scanner: ChainScanner,
        pricing: PricingService,
        config: WatcherConfig,
        *,
        owner: str | None = None,
        mempool: MempoolTracker | None = None,
    ) -> None:
        if scanner.chain is not config.chain:
            raise ValueError(f"a {scanner.chain} scanner cannot serve the {config.chain} watcher")
        self.database = database
        self.clock = clock
        self.scanner = scanner
        self.pricing = pricing
        self.config = config
        self.chain = config.chain
        self.owner = owner or f"watcher-{uuid.uuid4().hex[:12]}"
        self._watched: dict[str, int] = {}
        """Match key → deposit address id (the customer is read once the address is paid)."""
        self._watched_keys: frozenset[str] = frozenset()
        """The match keys of `_watched`, rebuilt only when addresses are added (copying
        100 000 keys per block was most of a block's matching cost)."""
        self._watched_after = 0
        self._backfill: Backfill | None = None
        self.mempool = mempool
        """Announces deposits before their block (`kassa.deposits.mempool`), in its own thread."""

    # ------------------------------------------------------------------ checkpoint and lease

    def _checkpoint(self, conn: Connection, now: datetime) -> Checkpoint:
        """Load the checkpoint, claiming the lease (or refusing if another watcher holds it)."""
        row = conn.execute(
            select(watcher_checkpoint)
            .where(watcher_checkpoint.c.chain == self.chain.value)
            .with_for_update()
        ).first()
        lease_until = now + timedelta(seconds=self.config.lease_seconds)
        if row is None:
            conn.execute(
                insert(watcher_checkpoint).values(
                    chain=self.chain.value,
                    height=self.config.start_height - 1,
                    block_hash="",
                    lease_owner=self.owner,
                    lease_until=lease_until,
                    updated_at=now,
                )
            )
            return Checkpoint(self.config.start_height - 1, "")
        if row.lease_owner not in (None, self.owner) and row.lease_until and row.lease_until > now:
            raise WatcherBusy(
                f"the {self.chain} watcher {row.lease_owner} holds the lease until "
                f"{row.lease_until:%H:%M:%S}Z"
            )
        conn.execute(
            update(watcher_checkpoint)
            .where(watcher_checkpoint.c.chain == self.chain.value)
            .values(lease_owner=self.owner, lease_until=lease_until)
        )
        return Checkpoint(int(row.height), str(row.block_hash))

    def _note_head(self, conn: Connection, head: ChainHead) -> None:
        conn.execute(
            update(watcher_checkpoint)
            .where(watcher_checkpoint.c.chain == self.chain.value)
            .values(head_height=head.height, final_height=head.final_height)
        )

    def _note_outcome(
        self, error: BaseException | None, *, head: int | None = None, scanned: int | None = None
    ) -> None:
        """Record when the last tick ended and how; `kassa devnet status` and health show it.
        After a full tick, the lag decides ``watcher.lagging`` / ``watcher.recovered``."""
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            if head is not None and scanned is not None:
                self._note_lag(conn, head, scanned, now)
            # The last error stays on record after later ticks succeed: its time tells
            # whether it is current.
            values: dict[str, object] = {"last_tick_at": now}
            if error is not None:
                values["last_error"] = f"{type(error).__name__}: {error}"[:2000]
                values["last_error_at"] = now
            conn.execute(
                update(watcher_checkpoint)
                .where(watcher_checkpoint.c.chain == self.chain.value)
                .values(**values)
            )

    def _note_lag(self, conn: Connection, head: int, scanned: int, now: datetime) -> None:
        lag = max(head - scanned, 0)
        threshold = self.config.lag_alert_blocks
        operational.settle(
            conn,
            subject_kind="watcher",
            subject_id=self.chain.value,
            trouble="watcher.lagging" if lag > threshold else None,
            recovered="watcher.recovered",
            data={
                "chain": self.chain.value,
                "scanned_height": scanned,
                "head_height": head,
                "lag": lag,
                "threshold": threshold,
            },
            at=now,
        )

    def release(self) -> None:
        with self.database.transaction() as conn:
            conn.execute(
                update(watcher_checkpoint)
                .where(
                    watcher_checkpoint.c.chain == self.chain.value,
                    watcher_checkpoint.c.lease_owner == self.owner,
                )
                .values(lease_owner=None, lease_until=None)
            )

    def holds_lease(self) -> bool:
        """Whether this watcher holds its chain now (its mempool tracker runs only then)."""
        with self.database.transaction() as conn:
            row = conn.execute(
                select(watcher_checkpoint.c.lease_owner, watcher_checkpoint.c.lease_until).where(
                    watcher_checkpoint.c.chain == self.chain.value
                )
            ).first()
            now = self.clock.now(conn)
        return (
            row is not None
            and row.lease_owner == self.owner
            and row.lease_until is not None
            and row.lease_until > now
        )

    def checkpoint(self) -> Checkpoint | None:
        with self.database.transaction() as conn:
            row = conn.execute(
                select(watcher_checkpoint).where(watcher_checkpoint.c.chain == self.chain.value)
            ).first()
        return None if row is None else Checkpoint(int(row.height), str(row.block_hash))

    # ------------------------------------------------------------------ one tick

    def tick(self, stop: threading.Event | None = None) -> TickReport:
        """One tick; once ``stop`` is set it scans no further block (a catch-up of many
        blocks would otherwise hold a stopping watcher, and its lease, until it is done)."""
        report = TickReport()
        head = self.scanner.head()
        report.head = head.height
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            cp = self._checkpoint(conn, now)
            self._note_head(conn, head)
            stored = self._stored_hashes(conn, cp.height)
        fork = self._find_fork(cp, head, stored)
        if fork < cp.height:
            self._rewind(fork)
            report.rewound_to = fork
            cp = self.checkpoint() or cp
        self._refresh_watched()
        if self._backfill is None and head.height - cp.height > self.config.store_batch_blocks:
            self._backfill = Backfill(
                self.chain, cp.height, head.height, self.config.progress_seconds
            )
        height = cp.height + 1
        tip_hash = cp.block_hash
        batch: list[ChainBlock] = []
        batch_started = time.monotonic()
        last = min(head.height, cp.height + self.config.max_blocks_per_tick)
        unsettled = 0  # deposits recorded since the last settle
        # A batch this long is stored early when the next block is not fetched yet.
        early = self.config.store_batch_blocks // 10 or self.config.store_batch_blocks
        shadow_credits = max(self.config.credit_batch // 4, 1)
        with BlockFeed(
            self.scanner,
            height,
            last,
            self._watched_keys,
            depth=self.config.prefetch_blocks,
            stop=stop,
        ) as feed:
            while (block := self._next_block(feed)) is not None:
                if tip_hash and block.parent_hash != tip_hash:
                    log.warning(
                        "%s block %d does not extend our tip; re-checking for a reorg next tick",
                        self.chain,
                        height,
                    )
                    break  # leaving the feed discards what it fetched beyond this block
                batch.append(block)
                report.scanned += 1
                tip_hash = block.hash
                height += 1
                waited = time.monotonic() - batch_started
                shadow = feed.waiting()  # the next block is not fetched yet
                if (
                    len(batch) >= self.config.store_batch_blocks
                    or waited >= self.config.store_batch_seconds
                    or (len(batch) >= early and shadow)
                ):
                    # The feed goes on fetching the next blocks meanwhile.
                    recorded = self._store_blocks(batch, head)
                    report.recorded += recorded
                    unsettled += recorded
                    if (
                        unsettled
                        and batch[0].height <= head.final_height
                        and (
                            unsettled >= self.config.credit_batch
                            or (shadow and unsettled >= shadow_credits)
                        )
                    ):
                        # Final deposits, a full credit batch of them, or a quarter of one
                        # stored in the fetch's shadow: credit them now, while the feed
                        # fetches on (fewer would pay a batch's fixed cost for little).
                        self._settle(head, report, final_only=True)
                        unsettled = 0
                    batch = []
                    batch_started = time.monotonic()
        if batch:
            report.recorded += self._store_blocks(batch, head)
        self._settle(head, report)
        self._note_outcome(None, head=head.height, scanned=height - 1)
        return report

    def _next_block(self, feed: BlockFeed) -> ChainBlock | None:
        return feed.next()

    def _stored_hashes(self, conn: Connection, top: int) -> dict[int, str]:
        rows = conn.execute(
            select(chain_block.c.height, chain_block.c.hash).where(
                chain_block.c.chain == self.chain.value,
                chain_block.c.height > top - self.config.reorg_window,
                chain_block.c.height <= top,
            )
        ).all()
        return {int(row.height): str(row.hash) for row in rows}

    def _find_fork(self, cp: Checkpoint, head: ChainHead, stored: Mapping[int, str]) -> int:
        """The highest height where our stored block is still on the node's best chain.

        Normally one request: the checkpoint block's hash still matches. Otherwise walk down
        the stored window; if nothing in it matches, the reorg is deeper than what we kept.
        """
        start = self.config.start_height
        if cp.height < start:
            return cp.height
        lowest = min(stored, default=cp.height + 1)
        height = min(cp.height, head.height)
        while height >= lowest:
            ours = stored.get(height)
            if ours is not None and self.scanner.block_hash(height) == ours:
                return height
            height -= 1
        if lowest <= start:
            return start - 1  # everything we ever scanned was replaced: start over
        raise DeepReorg(
            f"{self.chain}: none of the stored blocks {lowest}…{cp.height} is on the node's "
            "chain any more; an operator must check the node before the watcher goes on"
        )

    def _rewind(self, fork: int) -> None:
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            orphans = records.above(conn, self.chain, fork)
            for current in orphans:
                records.orphan(conn, current, fork_height=fork, now=now)
            conn.execute(
                delete(chain_block).where(
                    chain_block.c.chain == self.chain.value, chain_block.c.height > fork
                )
            )
            fork_hash = conn.execute(
                select(chain_block.c.hash).where(
                    chain_block.c.chain == self.chain.value, chain_block.c.height == fork
                )
            ).scalar_one_or_none()
            conn.execute(
                update(watcher_checkpoint)
                .where(watcher_checkpoint.c.chain == self.chain.value)
                .values(height=fork, block_hash=fork_hash or "", updated_at=now)
            )
        log.warning(
            "%s reorganisation: rewound to block %d; %d deposit(s) left the chain",
            self.chain,
            fork,
            len(orphans),
        )

    def _refresh_watched(self) -> None:
        with self.database.transaction() as conn:
            added = addresses.watched(conn, self.chain, self._watched_after)
        if added:
            self._watched.update(added)
            self._watched_keys = frozenset(self._watched)
            self._watched_after = max(added.values())

    def _store_blocks(self, blocks: Sequence[ChainBlock], head: ChainHead) -> int:
        """Store a batch of consecutive scanned blocks in one transaction and move the
        checkpoint to its last block. A crash before the commit leaves the checkpoint before
        the batch, so a restart scans the whole batch again: no gap, and nothing twice."""
        last = blocks[-1]
        window_floor = last.height - self.config.reorg_window
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            offset = offset_of(self.clock, conn)
            recorded = self._record_matches(conn, blocks, now, offset)
            conn.execute(
                delete(chain_block).where(
                    chain_block.c.chain == self.chain.value,
                    or_(
                        chain_block.c.height >= blocks[0].height,
                        chain_block.c.height <= window_floor,
                    ),
                )
            )
            conn.execute(
                insert(chain_block),
                [
                    {
                        "chain": self.chain.value,
                        "height": block.height,
                        "hash": block.hash,
                        "parent_hash": block.parent_hash,
                        "time": block.time,
                    }
                    for block in blocks
                    if block.height > window_floor
                ],
            )
            self._hold_lease(
                conn,
                now,
                f"storing blocks up to {last.height}",
                height=last.height,
                block_hash=last.hash,
            )
        if self._backfill is not None and self._backfill.note(last.height, head.height):
            self._backfill = None
        return recorded

    def _record_matches(
        self, conn: Connection, blocks: Sequence[ChainBlock], now: datetime, offset: timedelta
    ) -> int:
        """Record the batch's transfers to watched addresses (a set lookup per transfer), with
        their customers and any deposits already known read once for the whole batch."""
        paid: list[tuple[ChainBlock, ChainTransfer, int]] = []
        for block in blocks:
            for transfer in block.transfers:
                if transfer.amount <= 0:
                    continue
                address_id = self._watched.get(match_key(self.chain, transfer.to_address))
                if address_id is not None:
                    paid.append((block, transfer, address_id))
        if not paid:
            return 0
        owned = addresses.owners(conn, [address_id for _, _, address_id in paid])
        known = records.find_many(
            conn, self.chain, [(transfer.txid, transfer.position) for _, transfer, _ in paid]
        )
        deferred = records.Deferred()
        for block, transfer, address_id in paid:
            known[(transfer.txid, transfer.position)] = records.record(
                conn,
                transfer,
                block,
                deposit_address_id=address_id,
                customer_account_id=owned[address_id].customer_account_id,
                dust=self.config.dust.get(transfer.asset, 1),
                now=now,
                seen_at=block.time + offset,
                known=known,
                address=owned[address_id].address,
                deferred=deferred,
            )
        deferred.flush(conn)
        return len(paid)

    def _hold_lease(
        self, conn: Connection, now: datetime, doing: str, **checkpoint: object
    ) -> None:
        """Renew the lease, moving the checkpoint too when given. Only the lease holder may: a
        long catch-up never lets a standby watcher scan the same blocks meanwhile, and a watcher
        that lost its lease (it stalled) rolls this unit of work back and stops."""
        moved = conn.execute(
            update(watcher_checkpoint)
            .where(
                watcher_checkpoint.c.chain == self.chain.value,
                watcher_checkpoint.c.lease_owner == self.owner,
            )
            .values(
                updated_at=now,
                lease_until=now + timedelta(seconds=self.config.lease_seconds),
                **checkpoint,
            )
        )
        if moved.rowcount != 1:
            raise WatcherBusy(
                f"the {self.chain} watcher {self.owner} lost its lease while {doing}; another "
                "watcher has the chain"
            )

    # ------------------------------------------------------------------ settling

    def _settle(self, head: ChainHead, report: TickReport, *, final_only: bool = False) -> None:
        """Credit the deposits that are final; with ``final_only`` (between two stored batches
        of a long scan, while the next blocks are being fetched) leave the others as they are,
        else note how long each still waits."""
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            pending = records.unsettled(conn, self.chain)
            final = []
            for current in pending:
                height = current.block_height
                if height is None:
                    continue
                confirmations = max(head.height - height + 1, 0)
                if height <= head.final_height:
                    final.append((current, confirmations))
                elif not final_only:
                    records.set_waiting(
                        conn,
                        current,
                        confirmations=confirmations,
                        reason=(
                            f"{confirmations} confirmation(s); final once block {height} is "
                            f"final (now {head.final_height})"
                        ),
                        now=now,
                    )
        if not final:
            return
        priced = self._price(final, report)
        for first in range(0, len(priced), self.config.credit_batch):
            self._credit(priced[first : first + self.config.credit_batch], report)

    def _price(
        self, final: Sequence[tuple[records.Deposit, int]], report: TickReport
    ) -> list[_Priced]:
        """Each final deposit's price: a stored sample read for the whole batch at once (the
        lock is taken in the credit's transaction), or, when no stored sample answers, a lock
        from the pricing service (a candle lookup); without any rate the deposit waits."""
        book = self.pricing.book(self._payment_times(final))
        priced: list[_Priced] = []
        for current, confirmations in final:
            if current.block_hash is None:
                continue
            sample = book.sample(AssetCode(current.asset), current.first_seen_at)
            if sample is not None:
                priced.append(_Priced(current, current.block_hash, confirmations, sample))
                continue
            try:
                lock = self.pricing.lock(
                    purpose=current.purpose,
                    asset=AssetCode(current.asset),
                    side=Side.BID,
                    at=current.first_seen_at,
                )
            except NoRate as exc:
                report.waiting_for_rate += 1
                with self.database.transaction() as conn:
                    records.set_waiting(
                        conn,
                        current,
                        confirmations=confirmations,
                        reason=f"final; waiting for a rate: {exc.detail}",
                        now=self.clock.now(conn),
                    )
                continue
            priced.append(_Priced(current, current.block_hash, confirmations, lock))
        return priced

    @staticmethod
    def _payment_times(
        final: Sequence[tuple[records.Deposit, int]],
    ) -> dict[AssetCode, list[datetime]]:
        times: dict[AssetCode, list[datetime]] = {}
        for current, _ in final:
            times.setdefault(AssetCode(current.asset), []).append(current.first_seen_at)
        return times

    def _credit(self, batch: Sequence[_Priced], report: TickReport) -> None:
        """Credit a batch in one transaction: per deposit its rate lock (an existing one wins)
        and its ledger transaction under ``deposit:<id>:credit:<n>``. A crash rolls the whole
        batch back; the restart credits it again, once."""
        with self.database.transaction() as conn:
            now = self.clock.now(conn)
            self._hold_lease(conn, now, "crediting deposits")
            house_accounts = records.HouseAccounts(conn, now)
            locked = records.lock_for_credits(
                conn, [item.deposit for item in batch], house_accounts
            )
            # The batch's rate locks in one statement (an existing lock of a purpose wins).
            new_locks = lock_rates(
                conn,
                [
                    LockRequest(
                        purpose=item.deposit.purpose,
                        asset=AssetCode(item.deposit.asset),
                        side=Side.BID,
                        sample=item.price,
                        priced_at=item.deposit.first_seen_at,
                    )
                    for item in batch
                    if isinstance(item.price, RateSample)
                ],
                now=now,
            )
            deferred = records.Deferred()
            outcomes = records.credit_many(
                conn,
                [
                    records.CreditRequest(
                        item.deposit.id,
                        item.price
                        if isinstance(item.price, RateLock)
                        else new_locks[item.deposit.purpose],
                        item.block_hash,
                        item.confirmations,
                    )
                    for item in batch
                ],
                now=now,
                house_accounts=house_accounts,
                locked=locked,
                deferred=deferred,
            )
            deferred.flush(conn)
            credited = [
                (item.deposit, done)
                for item, done in zip(batch, outcomes, strict=True)
                if done is not None
            ]
        for current, done in credited:
            report.credited.append(done.id)
            with bound(deposit=current.id):
                log.info(
                    "credited %s deposit %s:%s (%s) for $%s",
                    current.asset,
                    current.txid,
                    current.position,
                    current.money.format(),
                    Money(done.usd_amount or 0, USD).format(),
                )

    # ------------------------------------------------------------------ loop

    def _try_note(self, error: BaseException) -> None:
        try:
            self._note_outcome(error)
        except Exception:  # the database itself may be what failed
            log.exception("could not record the %s watcher's error", self.chain)

    def run_forever(self, stop: threading.Event, interval_seconds: float) -> None:
        log.info("%s watcher %s started (every %ss)", self.chain, self.owner, interval_seconds)
        if self.mempool is not None:
            threading.Thread(
                target=self.mempool.run_forever,
                args=(stop,),
                kwargs={"leading": self.holds_lease},
                name=f"kassa-mempool-{self.chain}",
                daemon=True,
            ).start()
        try:
            while not stop.is_set():
                try:
                    with timed_round(f"watch_{self.chain}", expected=(WatcherBusy,)):
                        report = self.tick(stop)
                except WatcherBusy as exc:
                    log.info("%s", exc.detail)
                except DeepReorg as exc:
                    log.exception("%s watcher stopped", self.chain)
                    self._try_note(exc)
                    raise
                except Exception as exc:
                    log.exception("%s watcher tick failed; retrying", self.chain)
                    self._try_note(exc)
                else:
                    busy = report.recorded or report.credited or report.rewound_to is not None
                    if busy or report.scanned >= self.config.max_blocks_per_tick:
                        log.info(
                            "%s head %d: scanned %d, recorded %d, credited %d%s",
                            self.chain,
                            report.head,
                            report.scanned,
                            report.recorded,
                            len(report.credited),
                            ""
                            if report.rewound_to is None
                            else f", rewound to {report.rewound_to}",
                        )
                    if report.scanned >= self.config.max_blocks_per_tick:
                        continue  # catching up: no pause between batches
                stop.wait(interval_seconds)
        finally:
            self.release()
