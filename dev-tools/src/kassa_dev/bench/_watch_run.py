"""One measured watcher run: a fresh `Watcher` from the range start to the tip, ticked until
every paid deposit is credited (or it stops making progress).

The watcher is the production one, built from `watcher_config` and `build_scanner` over the
node's settings; only the start height is set to the range start. `TimedWatcher` adds clocks
around three of its steps and changes nothing else, so the run can be split into:

* start-up — loading the watched set (every address of the chain, one query);
* scan — ``scanner.block`` (chain I/O and decoding), storing the blocks (one transaction per
  batch of blocks: their deposits, their hashes, the checkpoint), and the copy of the watched
  set (``frozenset(self._watched)``; timed apart after the run, so an estimate: the watcher
  now keeps that set between address refreshes, so this line is what it no longer pays);
* waiting for blocks — with the prefetching watcher (`kassa.deposits.prefetch`) the scanner
  runs in its own thread, beside storing and crediting, so its time overlaps with theirs; what
  the tick still waits for the next block is timed apart (``wait_seconds``). A watcher without
  prefetching (an older `kassa.deposits.watcher`, run for a "before" figure) waits for every
  ``scanner.block`` call, so there the wait is the scanner's block time;
* settle — rate locks and credits of the final deposits (between stored batches too);
* the rest — head, checkpoint and lease, reorg check, outcome notes.

Pricing is the default `PricingSettings` (static demo rates), refreshed once at the tip's block
time on a `ManualClock` at that time; `history_tolerance_seconds` is widened to reach back to
the first block of the range, because each deposit is priced at its own block's time.

CPU during the run is read from /proc: this process (watcher, and SQLite, which runs inside
it), the node, the PostgreSQL backend serving the watcher, and whatever else kept the machine
busy ("others").
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text

from kassa.chains.network import Chain
from kassa.chains.scanning import ChainBlock, ChainHead
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits.runtime import build_scanner, watcher_config
from kassa.deposits.settings import ChainsSettings
from kassa.deposits.watcher import TickReport, Watcher
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.bench._cpu import CLOCK_TICKS_PER_SECOND, process_cpu_seconds, snapshot
from kassa_dev.bench._progress import HEARTBEAT_SECONDS, Progress
from kassa_dev.bench._watch_fetch import TimedScanner, close_scanner
from kassa_dev.bench._watch_model import WatchBenchError

TOLERANCE_MARGIN_SECONDS = 60
COPY_SAMPLES = 5
EXTRA_TICKS = 3
"""Ticks allowed beyond what the range needs, for deposits still waiting after the scan."""


class TimedWatcher(Watcher):
    """The production watcher with clocks around start-up, block storing and settling."""

    load_seconds = 0.0
    wait_seconds = 0.0
    store_seconds = 0.0
    settle_seconds = 0.0
    stored_blocks = 0
    settling = False

    @property
    def watched_count(self) -> int:
        return len(self._watched)

    def watched_copy_seconds(self) -> float:
        """What `tick` spends per block on ``frozenset(self._watched)``, the set it hands the
        scanner (median of a few copies, timed after the run)."""
        samples = []
        for _ in range(COPY_SAMPLES):
            started = time.perf_counter()
            frozenset(self._watched)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    def _refresh_watched(self) -> None:
        started = time.perf_counter()
        try:
            super()._refresh_watched()
        finally:
            self.load_seconds += time.perf_counter() - started

    def _store_blocks(self, blocks: Sequence[ChainBlock], head: ChainHead) -> int:
        started = time.perf_counter()
        try:
            return super()._store_blocks(blocks, head)
        finally:
            self.store_seconds += time.perf_counter() - started
            self.stored_blocks += len(blocks)

    def _next_block(self, feed: Any) -> ChainBlock | None:
        started = time.perf_counter()
        try:
            block: ChainBlock | None = super()._next_block(feed)
            return block
        finally:
            self.wait_seconds += time.perf_counter() - started

    def _settle(self, head: ChainHead, report: TickReport, **options: Any) -> None:
        started = time.perf_counter()
        self.settling = True
        try:
            super()._settle(head, report, **options)
        finally:
            self.settling = False
            self.settle_seconds += time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class CpuFigures:
    bench_seconds: float | None
    """This process: the watcher, the client stack, and SQLite (an in-process library)."""
    node_seconds: float | None
    database_seconds: float | None
    """The PostgreSQL backend of the watcher's connection (None on SQLite)."""
    machine_busy_fraction: float | None
    others_fraction: float | None
    """Share of all CPUs busy with anything but the three above."""


@dataclass(frozen=True, slots=True)
class WatcherFigures:
    blocks: int
    recorded: int
    credited: int
    ticks: int
    seconds: float
    """The whole run: first tick's start to last tick's end."""
    load_seconds: float
    scanner_seconds: float
    """All scanner calls (head, block hashes, blocks)."""
    scanner_block_seconds: float
    wait_seconds: float
    """The tick waiting for its next block: all of the scanner's block time without
    prefetching, only what storing and crediting did not hide with it."""
    prefetch: bool
    store_seconds: float
    settle_seconds: float
    set_copy_seconds_each: float
    """Measured apart, after the run: one copy of the watched set, which `tick` makes per
    block; times `blocks` it estimates that share of the run."""
    watched: int
    """Addresses in the watched set."""
    tolerance_seconds: int
    cpu: CpuFigures

    @property
    def blocks_per_second(self) -> float:
        return self.blocks / self.seconds if self.seconds > 0 else 0.0

    @property
    def running_seconds(self) -> float:
        """The run without start-up (loading the watched set), which a long-running watcher
        pays once per process."""
        return self.seconds - self.load_seconds

    @property
    def running_blocks_per_second(self) -> float:
        return self.blocks / self.running_seconds if self.running_seconds > 0 else 0.0

    @property
    def deposits_per_second(self) -> float:
        return self.credited / self.seconds if self.seconds > 0 else 0.0

    @property
    def set_copy_seconds(self) -> float:
        return self.set_copy_seconds_each * self.blocks

    @property
    def scan_seconds(self) -> float:
        """The scan loop: waiting for blocks and storing them (the set copy is no longer made
        per block)."""
        return self.wait_seconds + self.store_seconds

    @property
    def scan_blocks_per_second(self) -> float:
        return self.blocks / self.scan_seconds if self.scan_seconds > 0 else 0.0

    @property
    def settle_deposits_per_second(self) -> float:
        return self.credited / self.settle_seconds if self.settle_seconds > 0 else 0.0

    @property
    def other_seconds(self) -> float:
        return max(
            0.0,
            self.seconds
            - self.load_seconds
            - (self.scanner_seconds - self.scanner_block_seconds)
            - self.wait_seconds
            - self.store_seconds
            - self.settle_seconds,
        )


def run_watcher(
    db: Database,
    settings: ChainsSettings,
    chain: Chain,
    start: int,
    end: int,
    expected: int,
    node_pid: int,
    progress: Progress,
    *,
    prefetch_blocks: int | None = None,
) -> WatcherFigures:
    scanner = TimedScanner(build_scanner(settings, chain))
    try:
        return _run(
            db, settings, scanner, start, end, expected, node_pid, progress, prefetch_blocks
        )
    finally:
        close_scanner(scanner.inner)


def _run(
    db: Database,
    settings: ChainsSettings,
    scanner: TimedScanner,
    start: int,
    end: int,
    expected: int,
    node_pid: int,
    progress: Progress,
    prefetch_blocks: int | None,
) -> WatcherFigures:
    chain = scanner.chain
    first_time = scanner.inner.block(start, frozenset()).time
    tip_time = scanner.inner.block(end, frozenset()).time
    tolerance = math.ceil((tip_time - first_time).total_seconds()) + TOLERANCE_MARGIN_SECONDS
    clock = ManualClock(tip_time)
    pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=tolerance))
    refreshed = pricing.refresh()
    if refreshed.missing:
        raise WatchBenchError(f"no static rate for {sorted(refreshed.missing)}")
    config = replace(watcher_config(settings, chain), start_height=start)
    if prefetch_blocks is not None:
        config = replace(config, prefetch_blocks=prefetch_blocks)
    watcher = TimedWatcher(db, clock, scanner, pricing, config, owner=f"bench-{chain.value}")
    database_pid = _backend_pid(db)
    blocks = end - start + 1
    max_ticks = math.ceil(blocks / config.max_blocks_per_tick) + EXTRA_TICKS
    scanned = recorded = credited = ticks = 0
    before = _cpu_now(node_pid, database_pid)
    started = time.perf_counter()
    with _heartbeat(watcher, scanner, blocks, progress):
        while ticks < max_ticks:
            report = watcher.tick()
            ticks += 1
            scanned += report.scanned
            recorded += report.recorded
            credited += len(report.credited)
            done = scanned >= blocks and credited >= expected
            stalled = scanned >= blocks and not report.scanned and not report.credited
            if done or stalled:
                break
    seconds = time.perf_counter() - started
    after = _cpu_now(node_pid, database_pid)
    watcher.release()
    prefetch = hasattr(Watcher, "_next_block") and getattr(config, "prefetch_blocks", 0) > 0
    if not prefetch:  # an older watcher: it waited for every block the scanner fetched
        watcher.wait_seconds = scanner.block_seconds
    if watcher.stored_blocks != scanned or (scanned and not watcher.load_seconds):
        raise WatchBenchError(
            "the watcher's timed steps were not called as expected: has Watcher changed?"
        )
    return WatcherFigures(
        blocks=scanned,
        recorded=recorded,
        credited=credited,
        ticks=ticks,
        seconds=seconds,
        load_seconds=watcher.load_seconds,
        scanner_seconds=scanner.seconds,
        scanner_block_seconds=scanner.block_seconds,
        wait_seconds=watcher.wait_seconds,
        prefetch=prefetch,
        store_seconds=watcher.store_seconds,
        settle_seconds=watcher.settle_seconds,
        set_copy_seconds_each=watcher.watched_copy_seconds(),
        watched=watcher.watched_count,
        tolerance_seconds=tolerance,
        cpu=_cpu_figures(before, after),
    )


def _backend_pid(db: Database) -> int | None:
    """The PostgreSQL backend the watcher will use: its transactions run one at a time, so the
    pool hands them the connection the pricing refresh just returned."""
    if db.dialect != "postgresql":
        return None
    with db.transaction() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


@contextmanager
def _heartbeat(
    watcher: TimedWatcher, scanner: TimedScanner, blocks: int, progress: Progress
) -> Iterator[None]:
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            doing = "crediting" if watcher.settling else "scanning"
            progress.heartbeat(f"watcher {doing}: {scanner.blocks:,}/{blocks:,} blocks fetched")

    thread = threading.Thread(target=beat, name="bench-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True, slots=True)
class _CpuNow:
    bench: float | None
    node: float | None
    database: float | None
    busy_ticks: int | None
    total_ticks: int | None


def _cpu_now(node_pid: int, database_pid: int | None) -> _CpuNow:
    machine = snapshot([], [])
    return _CpuNow(
        bench=process_cpu_seconds(os.getpid()),
        node=process_cpu_seconds(node_pid),
        database=None if database_pid is None else process_cpu_seconds(database_pid),
        busy_ticks=machine.machine_busy_ticks,
        total_ticks=machine.machine_total_ticks,
    )


def _cpu_figures(before: _CpuNow, after: _CpuNow) -> CpuFigures:
    bench = _delta(before.bench, after.bench)
    node = _delta(before.node, after.node)
    database = _delta(before.database, after.database)
    busy = others = None
    if before.total_ticks is not None and after.total_ticks is not None:
        total = after.total_ticks - before.total_ticks
        if total > 0:
            busy = ((after.busy_ticks or 0) - (before.busy_ticks or 0)) / total
            ours = (bench or 0.0) + (node or 0.0) + (database or 0.0)
            others = max(0.0, busy - ours * CLOCK_TICKS_PER_SECOND / total)
    return CpuFigures(bench, node, database, busy, others)


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before
