"""`kassa bench webhooks`: webhook deliveries/s and what the outbox costs the write path.

On one database (a fresh PostgreSQL database by default, or a SQLite file) with a local
receiver process (HTTP/1.1 keep-alive, answering 200), it measures:

1. **deliveries/s**: ``--events`` events are written at once for one enabled endpoint, and
   ``--workers`` sender processes (`kassa.webhooks.sender.Sender`, the loop `kassa worker` runs:
   fan-out, claim, signed POST, record) deliver them; the figure is events delivered per second
   from the commit to the last recorded success, and every event must have been delivered
   exactly once;
2. **the outbox on the write path**: usage batches (``--batch-lines`` lines plus the revenue leg,
   each with one synthetic ``deposit.credited`` event written in the same transaction) by
   ``--writers`` processes, while the senders run — first with the endpoint disabled (the fan-out
   still reads every event), then enabled (every batch's event is delivered while the writers
   write), alternating ``--rounds`` times so that a machine whose load drifts weighs on both sides.
   The ratio of usage postings/s with to without is the cost of delivery on the write path;
   the target is at most 10 % slower (ratio ≥ 0.90). Both sides run in the same run, on the
   same database.

Run it as `python -m kassa_dev.bench.webhooks` (or `kassa bench webhooks`); `--help` lists the
options.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
import zlib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from kassa.clock import DatabaseClock
from kassa.db import Database, make_engine
from kassa.events.outbox import record
from kassa.webhooks import endpoints
from kassa.webhooks.sender import Sender
from kassa.webhooks.settings import WebhookSettings
from kassa.webhooks.tables import webhook_delivery
from kassa.webhooks.transport import AddressPolicy
from kassa_dev.bench._databases import (
    DEFAULT_PG_ADMIN_URL,
    POSTGRES,
    SQLITE,
    Target,
    postgres_target,
    sqlite_target,
)
from kassa_dev.bench._phases import BenchFailure, PhaseResult, Timing, run_phase
from kassa_dev.bench._progress import Heartbeat, Progress
from kassa_dev.bench._setup import Fixture, prepare
from kassa_dev.bench._signals import sigterm_as_interrupt
from kassa_dev.bench._workers import WorkerSpec, Workload

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

TARGET_RATIO = 0.90
"""Usage postings/s with an enabled endpoint over without: at most 10 % slower."""
WARMUP_SECONDS = 1.0
SETTINGS = WebhookSettings(batch_size=200, concurrency=8, poll_interval_seconds=0.5)
"""The senders as `kassa worker` runs them, polling twice as often as the default."""


@dataclass(frozen=True, slots=True)
class Options:
    database: str
    events: int
    workers: int
    writers: int
    seconds: float
    rounds: int
    batch_lines: int
    accounts: int
    pg_url: str
    json_path: Path | None


@dataclass
class Figures:
    database: str = ""
    where: str = ""
    events: int = 0
    workers: int = 0
    delivery_seconds: float = 0.0
    deliveries_per_second: float = 0.0
    delivered_once: bool = False
    without_endpoint: dict[str, float] = field(default_factory=dict)
    with_endpoint: dict[str, float] = field(default_factory=dict)
    ratio: float = 0.0
    events_delivered_while_writing: int = 0
    error: str | None = None

    @property
    def target_met(self) -> bool:
        return self.error is None and self.delivered_once and self.ratio >= TARGET_RATIO


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    planned = 20 + options.events / 200 + 2 * options.rounds * (options.seconds + 5)
    progress = Progress(planned)
    try:
        with sigterm_as_interrupt():
            figures = _bench(options, progress)
    except KeyboardInterrupt:
        print("\ninterrupted: workers stopped, bench database removed", file=sys.stderr)
        return 130
    _report(figures, options)
    return 0 if figures.error is None and figures.delivered_once else 1


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="kassa bench webhooks",
        description="Webhook deliveries/s to a local receiver, and the outbox's cost on the "
        "write path (usage postings/s with and without an enabled endpoint).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--db", choices=(SQLITE, POSTGRES), default=POSTGRES)
    parser.add_argument("--events", type=_positive, default=2000, help="events to deliver")
    parser.add_argument("--workers", type=_positive, default=2, help="sender processes")
    parser.add_argument("--writers", type=_positive, default=2, help="usage writer processes")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    parser.add_argument(
        "--rounds", type=_positive, default=2, help="alternations of the two write phases"
    )
    parser.add_argument("--batch-lines", type=_positive, default=100, help="lines per batch")
    parser.add_argument("--accounts", type=_positive, default=200, help="funded user accounts")
    parser.add_argument("--pg-url", default=DEFAULT_PG_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write JSON")
    args = parser.parse_args(argv)
    return Options(
        args.db,
        args.events,
        args.workers,
        args.writers,
        args.seconds,
        args.rounds,
        args.batch_lines,
        max(args.accounts, 2),
        args.pg_url,
        args.json,
    )


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _target(options: Options) -> AbstractContextManager[Target]:
    return postgres_target(options.pg_url) if options.database == POSTGRES else sqlite_target()


def _bench(options: Options, progress: Progress) -> Figures:
    figures = Figures(database=options.database, events=options.events, workers=options.workers)
    ctx = multiprocessing.get_context("spawn")
    with _target(options) as target, _Receiver(ctx) as receiver:
        figures.where = target.where
        db = Database(make_engine(target.url, pool_size=2))
        try:
            progress.step(f"{target.name}: setup at {target.where}", 10)
            fixture = prepare(db, options.accounts, progress)
            endpoint_id = _endpoint(db, receiver.url)
            with _Senders(ctx, target.url, options.workers) as senders:
                senders.wait_ready(progress)
                _deliveries(db, options, figures, progress)
                _write_path(db, target, fixture, endpoint_id, options, figures, progress)
        except BenchFailure as error:
            figures.error = str(error)
            progress.line(f"FAILED — {error}")
        finally:
            db.dispose()
    return figures


def _endpoint(db: Database, url: str) -> Any:
    with db.transaction() as conn:
        made, _secret = endpoints.create(
            conn,
            url=url,
            event_types=[],
            description="bench receiver",
            customer_account_id=None,
            actor="kassa-bench",
            now=DatabaseClock().now(conn),
            policy=AddressPolicy.of(SETTINGS.with_loopback()),
        )
    return made.id


def _succeeded(db: Database) -> int:
    with db.transaction() as conn:
        return int(
            conn.execute(
                select(func.count()).where(webhook_delivery.c.status == "succeeded")
            ).scalar_one()
        )


def _deliveries(db: Database, options: Options, figures: Figures, progress: Progress) -> None:
    progress.step(
        f"phase 1: {options.events:,} events to one endpoint, {options.workers} sender(s)",
        options.events / 200,
    )
    with db.transaction() as conn:
        now = DatabaseClock().now(conn)
        for n in range(options.events):
            record(
                conn,
                type="deposit.credited",  # a synthetic one: the bench's events are its own
                subject_kind="deposit",
                subject_id=f"ping-{n}",
                data={"n": n},
                at=now,
            )
    started = time.monotonic()
    heartbeat = Heartbeat()
    deadline = started + max(120.0, options.events / 10)
    while (done := _succeeded(db)) < options.events:
        if time.monotonic() > deadline:
            raise BenchFailure(f"only {done} of {options.events} events delivered in time")
        if heartbeat.due():
            progress.heartbeat(f"{done:,}/{options.events:,} delivered")
        time.sleep(0.05)
    figures.delivery_seconds = time.monotonic() - started
    figures.deliveries_per_second = options.events / figures.delivery_seconds
    with db.transaction() as conn:
        per_event = conn.execute(
            select(
                webhook_delivery.c.event_id, func.count(), func.max(webhook_delivery.c.attempts)
            ).group_by(webhook_delivery.c.event_id)
        ).all()
    figures.delivered_once = len(per_event) == options.events and all(
        count == 1 and attempts == 1 for _event, count, attempts in per_event
    )
    progress.heartbeat(
        f"=> {options.events:,} delivered in {figures.delivery_seconds:.2f} s: "
        f"{figures.deliveries_per_second:,.0f} deliveries/s; each exactly once: "
        f"{'yes' if figures.delivered_once else 'NO'}"
    )


def _write_path(
    db: Database,
    target: Target,
    fixture: Fixture,
    endpoint_id: Any,
    options: Options,
    figures: Figures,
    progress: Progress,
) -> None:
    timing = Timing(WARMUP_SECONDS, options.seconds)

    numbers = iter(range(2, 2 + 2 * options.rounds))
    total = 1 + 2 * options.rounds

    def phase(label: str) -> PhaseResult:
        number = next(numbers)
        progress.step(
            f"phase {number}/{total}: usage batches of {options.batch_lines} lines with their "
            f"events, {options.writers} writer(s), {label}",
            options.seconds + WARMUP_SECONDS + 4,
        )
        scope = f"bench-webhooks-{number}"
        specs = [
            WorkerSpec(
                url=target.url,
                workload=Workload.USAGE_EVENT,
                writer=writer,
                account_ids=fixture.account_ids,
                revenue_id=fixture.revenue_id,
                key_scope=scope,
                seed=zlib.crc32(f"{scope}-{writer}".encode()),
                batch_lines=options.batch_lines,
            )
            for writer in range(options.writers)
        ]
        result = run_phase(label, specs, options.batch_lines + 1, timing, progress)
        progress.heartbeat(
            f"=> {result.commits_per_second:,.1f} batches/s, "
            f"{result.postings_per_second:,.0f} postings/s"
        )
        return result

    without: list[PhaseResult] = []
    enabled: list[PhaseResult] = []
    for _round in range(options.rounds):
        with db.transaction() as conn:
            endpoints.disable(
                conn, endpoint_id, reason="bench: no endpoint", now=DatabaseClock().now(conn)
            )
        without.append(phase("no enabled endpoint (fan-out only)"))
        before = _succeeded(db)
        with db.transaction() as conn:
            endpoints.enable(conn, endpoint_id, now=DatabaseClock().now(conn))
        enabled.append(phase("one enabled endpoint (every event delivered)"))
        figures.events_delivered_while_writing += _succeeded(db) - before
    figures.without_endpoint = _phase_figures(without)
    figures.with_endpoint = _phase_figures(enabled)
    figures.ratio = (
        figures.with_endpoint["postings_per_second"]
        / figures.without_endpoint["postings_per_second"]
    )


def _phase_figures(results: Sequence[PhaseResult]) -> dict[str, float]:
    """The phases of one side together: commits over the seconds they were measured."""
    seconds = sum(r.measured_seconds for r in results)
    batches = sum(r.measured_commits for r in results) / seconds
    return {
        "batches_per_second": batches,
        "postings_per_second": batches * results[0].postings_per_commit,
        "measured_seconds": seconds,
    }


def _report(figures: Figures, options: Options) -> None:
    print()
    print(f"database: {figures.database} ({figures.where})")
    if figures.deliveries_per_second:
        print(
            f"deliveries: {figures.events:,} events, {figures.workers} sender process(es): "
            f"{figures.deliveries_per_second:,.0f} deliveries/s "
            f"({figures.delivery_seconds:.2f} s; each exactly once: "
            f"{'yes' if figures.delivered_once else 'NO'})"
        )
    if figures.ratio:
        print(
            f"usage postings/s without an enabled endpoint: "
            f"{figures.without_endpoint['postings_per_second']:,.0f}; with one: "
            f"{figures.with_endpoint['postings_per_second']:,.0f} "
            f"({figures.events_delivered_while_writing:,} events delivered meanwhile)"
        )
        slower = (1 - figures.ratio) * 100
        print(
            f"outbox + delivery cost on the write path: ratio {figures.ratio:.3f} "
            f"({slower:+.1f} % slower; target ≤ 10 %: "
            f"{'met' if figures.ratio >= TARGET_RATIO else 'NOT met'})"
        )
    if figures.error:
        print(f"failed: {figures.error}")
    if options.json_path is not None:
        document = {"options": {**asdict(options), "pg_url": "<redacted>"}, **asdict(figures)}
        options.json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
        print(f"figures written to {options.json_path}")


# -- the receiver and the senders, each in its own process ---------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(ports: Queue[int]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    ports.put(int(server.server_address[1]))
    server.serve_forever()


class _Receiver:
    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._process: BaseProcess | None = None
        self.url = ""

    def __enter__(self) -> _Receiver:
        ports: Queue[int] = self._ctx.Queue()
        self._process = self._ctx.Process(target=_serve, args=(ports,), daemon=True)
        self._process.start()
        self.url = f"http://127.0.0.1:{ports.get(timeout=60)}/bench"
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(10)


def _send(url: str, worker_id: str, ready: Event, stop: Event) -> None:
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    db = Database(make_engine(url, pool_size=2))
    flag = threading.Event()
    sender = Sender(db, DatabaseClock(), SETTINGS.with_loopback(), worker_id=worker_id)

    def relay() -> None:
        stop.wait()
        flag.set()

    threading.Thread(target=relay, daemon=True).start()
    ready.set()
    try:
        sender.run_forever(flag)
    finally:
        db.dispose()


class _Senders:
    def __init__(self, ctx: Any, url: str, count: int) -> None:
        self._stop: Event = ctx.Event()
        self._ready: list[Event] = [ctx.Event() for _ in range(count)]
        self._processes: list[BaseProcess] = [
            ctx.Process(target=_send, args=(url, f"bench-sender-{n}", self._ready[n], self._stop))
            for n in range(count)
        ]

    def __enter__(self) -> _Senders:
        for process in self._processes:
            process.start()
        return self

    def wait_ready(self, progress: Progress) -> None:
        for ready in self._ready:
            if not ready.wait(120):
                raise BenchFailure("a sender process never started")
        progress.heartbeat(f"{len(self._processes)} sender process(es) running")

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for process in self._processes:
            process.join(30)
            if process.is_alive():
                process.terminate()
                process.join()


if __name__ == "__main__":
    raise SystemExit(main())
