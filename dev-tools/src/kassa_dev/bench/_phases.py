"""One measured phase: spawn the writers, warm up, measure, stop them, count commits."""

from __future__ import annotations

import ctypes
import multiprocessing
import queue
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kassa_dev.bench import _cpu
from kassa_dev.bench._cpu import CpuUsage
from kassa_dev.bench._progress import Heartbeat, Progress
from kassa_dev.bench._signals import interrupts_deferred, sigint_ignored
from kassa_dev.bench._workers import Shared, WorkerReport, WorkerSpec, Workload, run_worker

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

STOP_GRACE_SECONDS = 30.0
"""How long a worker may take to finish its current transaction once told to stop."""
START_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.5


class BenchFailure(RuntimeError):
    """A phase could not run (a worker failed, or never started)."""


@dataclass(frozen=True, slots=True)
class Timing:
    warmup_seconds: float
    measure_seconds: float


@dataclass(frozen=True, slots=True)
class PhaseResult:
    label: str
    workload: Workload
    writers: int
    postings_per_commit: int
    """Postings one commit inserts (0 for the raw baseline)."""
    measured_commits: int
    measured_seconds: float
    total_commits: int
    """Commits including warm-up: what the ledger must now contain."""
    cpu: CpuUsage

    @property
    def commits_per_second(self) -> float:
        return self.measured_commits / self.measured_seconds

    @property
    def postings_per_second(self) -> float:
        return self.commits_per_second * self.postings_per_commit


def run_phase(
    label: str,
    specs: Sequence[WorkerSpec],
    postings_per_commit: int,
    timing: Timing,
    progress: Progress,
) -> PhaseResult:
    ctx = multiprocessing.get_context("spawn")
    shared = Shared(
        counters=ctx.RawArray(ctypes.c_int64, len(specs)),
        stop=ctx.RawValue(ctypes.c_bool, False),
        go=ctx.Event(),
        reports=ctx.Queue(),
    )
    processes = [
        ctx.Process(target=run_worker, args=(spec, shared), name=f"bench-{label}-{spec.writer}")
        for spec in specs
    ]
    with _workers_running(processes, shared):
        backends = _await_ready(shared, processes, progress)
        writer_pids = [process.pid for process in processes if process.pid is not None]
        shared.go.set()
        _watch(shared, processes, progress, timing.warmup_seconds, "warm-up")
        cpu_before = _cpu.snapshot(writer_pids, backends)
        before, started = _commits(shared), time.monotonic()
        _watch(shared, processes, progress, timing.measure_seconds, "measuring")
        after, finished = _commits(shared), time.monotonic()
        cpu = _cpu.usage(cpu_before, _cpu.snapshot(writer_pids, backends), after - before)
    return PhaseResult(
        label=label,
        workload=specs[0].workload,
        writers=len(specs),
        postings_per_commit=postings_per_commit,
        measured_commits=after - before,
        measured_seconds=finished - started,
        total_commits=_commits(shared),
        cpu=cpu,
    )


@contextmanager
def _workers_running(processes: Sequence[BaseProcess], shared: Shared) -> Iterator[None]:
    """Start the workers; on the way out (also on Ctrl-C or failure) stop and reap them all
    and raise if any of them failed."""
    try:
        _start(processes)
        yield
    finally:
        with interrupts_deferred():
            shared.stop.value = True
            shared.go.set()
            _reap(processes)
    _raise_on_failure(shared, len(processes))


def _start(processes: Sequence[BaseProcess]) -> None:
    # The writers never see Ctrl-C (not even halfway through their start-up): the
    # coordinator gets it and stops them with the flag.
    with sigint_ignored():
        for process in processes:
            process.start()


def _reap(processes: Sequence[BaseProcess]) -> None:
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        if process.pid is None:
            continue
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
            process.join()


def _commits(shared: Shared) -> int:
    return sum(int(count) for count in shared.counters)


def _await_ready(shared: Shared, processes: Sequence[BaseProcess], progress: Progress) -> list[int]:
    """Wait until every writer is connected; returns their PostgreSQL backend pids."""
    ready: set[int] = set()
    backends: list[int] = []
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    heartbeat = Heartbeat()
    while len(ready) < len(processes):
        if time.monotonic() > deadline:
            raise BenchFailure(f"only {len(ready)} of {len(processes)} writers started")
        report = _next_report(shared, processes, POLL_SECONDS)
        if report is not None and report.status == "ready":
            ready.add(report.writer)
            backends += [] if report.backend_pid is None else [report.backend_pid]
        if heartbeat.due():
            progress.heartbeat(f"starting writers: {len(ready)}/{len(processes)} ready")
    return backends


def _watch(
    shared: Shared,
    processes: Sequence[BaseProcess],
    progress: Progress,
    seconds: float,
    what: str,
) -> None:
    """Wait `seconds`, printing a heartbeat every ~2 s and failing fast if a worker fails."""
    started = time.monotonic()
    commits_at_start = _commits(shared)
    heartbeat = Heartbeat()
    while (elapsed := time.monotonic() - started) < seconds:
        _next_report(shared, processes, min(seconds - elapsed, heartbeat.seconds_until_due()))
        if heartbeat.due():
            elapsed = time.monotonic() - started
            commits = _commits(shared) - commits_at_start
            progress.heartbeat(
                f"{what} {elapsed:4.1f}/{seconds:.0f} s, ETA {max(0.0, seconds - elapsed):.0f} s:"
                f" {commits:,} commits, {commits / elapsed:,.0f}/s"
            )


def _next_report(
    shared: Shared, processes: Sequence[BaseProcess], timeout_seconds: float
) -> WorkerReport | None:
    """Wait up to `timeout_seconds` for a worker report; raise if a worker failed or died."""
    try:
        report = shared.reports.get(timeout=max(timeout_seconds, 0.001))
    except queue.Empty:
        report = None
    if report is not None and report.status == "failed":
        raise BenchFailure(f"writer {report.writer} failed:\n{report.error}")
    dead = [p.name for p in processes if p.exitcode not in (None, 0)]
    if dead:
        raise BenchFailure(f"writer processes died: {', '.join(dead)}")
    return report


def _raise_on_failure(shared: Shared, writers: int) -> None:
    """After the workers are reaped: every one must have reported 'done'."""
    done = 0
    while True:
        try:
            report = shared.reports.get(timeout=0.5)
        except queue.Empty:
            break
        if report.status == "failed":
            raise BenchFailure(f"writer {report.writer} failed:\n{report.error}")
        done += report.status == "done"
    if done != writers:
        raise BenchFailure(f"only {done} of {writers} writers finished cleanly")
