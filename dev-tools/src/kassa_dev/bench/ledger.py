"""`kassa bench ledger`: ledger write throughput on SQLite and PostgreSQL, durable settings.

For each database (a SQLite file in a temporary directory with the production settings, and a
fresh PostgreSQL database that is created and dropped) it measures, with N writer processes:

* raw INSERT+COMMIT/s of a one-row scratch table through the same client stack (the ceiling),
  and on PostgreSQL also as one autocommit round trip;
* single transfers/s — `transfers.commit_transfer` between random distinct pairs of funded user
  accounts, each with its own idempotency key, one unit of work each — and their ratio to raw;
  on PostgreSQL also `transfers.transfer` inside BEGIN … COMMIT, side by side;
* hot account transfers/s — `commit_transfer` from random user accounts into house revenue;
* usage postings/s — one `transfers.post` of 1,000 usage lines plus the revenue leg per unit of
  work — with N writers and with one, reporting both and the better;

then folds every posting to check that the ledger is consistent. Run it as
`python -m kassa_dev.bench.ledger` (or `kassa bench ledger`); `--help` lists the options.
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from kassa.db import Database, make_engine
from kassa.ledger.model import TransactionKind
from kassa_dev.bench._args import at_least
from kassa_dev.bench._databases import (
    DEFAULT_PG_ADMIN_URL,
    POSTGRES,
    SQLITE,
    Target,
    durability_settings,
    is_durable,
    postgres_target,
    sqlite_target,
)
from kassa_dev.bench._phases import BenchFailure, PhaseResult, Timing, run_phase
from kassa_dev.bench._progress import Progress
from kassa_dev.bench._report import (
    DatabaseRun,
    Phases,
    cpu_table,
    cpu_text,
    document,
    rows_for,
    table,
    write_json,
)
from kassa_dev.bench._setup import Fixture, prepare
from kassa_dev.bench._signals import sigterm_as_interrupt
from kassa_dev.bench._verify import Expected, verify
from kassa_dev.bench._workers import WorkerSpec, Workload

USAGE_LINES = 1_000
"""Usage lines per batch; each batch also has one revenue leg."""
TRANSFER_SCOPE = "bench"
IN_TRANSACTION_SCOPE = "bench-in-transaction"
HOT_SCOPE = "bench-hot"
WARMUP_SECONDS = 2.0
SETUP_ESTIMATE_SECONDS = 6.0
WRITER_START_CPU_SECONDS = 2.0
"""CPU a spawned writer needs to import its modules (more without cached bytecode)."""
VERIFY_ESTIMATE_SECONDS = 4.0


@dataclass(frozen=True, slots=True)
class Options:
    databases: tuple[str, ...]
    seconds: float
    writers: int
    accounts: int
    pg_url: str
    json_path: Path | None

    def phase_count(self, database: str) -> int:
        """Raw, transfers, hot account, usage (N writers and 1); on PostgreSQL also the
        one-round-trip raw insert and the transfer inside BEGIN … COMMIT."""
        usage = 2 if self.writers > 1 else 1
        return 3 + usage + (2 if database == POSTGRES else 0)

    def phase_seconds(self) -> float:
        start_seconds = WRITER_START_CPU_SECONDS * self.writers / (os.cpu_count() or 1)
        return 1.0 + start_seconds + WARMUP_SECONDS + self.seconds

    def planned_seconds(self) -> float:
        return sum(
            SETUP_ESTIMATE_SECONDS
            + self.phase_count(database) * self.phase_seconds()
            + VERIFY_ESTIMATE_SECONDS
            for database in self.databases
        )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    progress = Progress(options.planned_seconds())
    runs: list[DatabaseRun] = []
    try:
        with sigterm_as_interrupt():
            for name in options.databases:
                runs.append(_bench_database(name, options, progress))
    except KeyboardInterrupt:
        print("\ninterrupted: writers stopped, bench databases removed", file=sys.stderr)
        return 130
    _report(runs, options)
    ok = all(run.error is None and run.consistent for run in runs)
    return 0 if ok else 1


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="kassa bench ledger",
        description="Measure ledger write throughput on SQLite and PostgreSQL (durable).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--db", choices=(SQLITE, POSTGRES, "both"), default="both", help="databases to measure"
    )
    parser.add_argument(
        "--seconds", type=_positive(float), default=10.0, help="measured seconds per phase"
    )
    parser.add_argument("--writers", type=_positive(int), default=8, help="writer processes")
    parser.add_argument("--accounts", type=at_least(2), default=1_000, help="user accounts")
    parser.add_argument("--pg-url", default=DEFAULT_PG_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write JSON")
    args = parser.parse_args(argv)
    databases = (SQLITE, POSTGRES) if args.db == "both" else (args.db,)
    return Options(databases, args.seconds, args.writers, args.accounts, args.pg_url, args.json)


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _target(name: str, options: Options) -> AbstractContextManager[Target]:
    return postgres_target(options.pg_url) if name == POSTGRES else sqlite_target()


def _bench_database(name: str, options: Options, progress: Progress) -> DatabaseRun:
    run = DatabaseRun(name)
    try:
        with _target(name, options) as target:
            run.where = target.where
            db = Database(make_engine(target.url))
            try:
                _measure(run, db, target, options, progress)
            finally:
                db.dispose()
    except (BenchFailure, SQLAlchemyError, psycopg.Error, OSError) as error:
        run.error = f"{type(error).__name__}: {error}"
        progress.line(f"{name}: FAILED — {run.error}")
    return run


def _measure(
    run: DatabaseRun, db: Database, target: Target, options: Options, progress: Progress
) -> None:
    name = target.name
    progress.step(
        f"{name}: setup at {target.where} — migrate, open and fund {options.accounts:,} "
        "accounts by operator adjustment",
        SETUP_ESTIMATE_SECONDS,
    )
    fixture = prepare(db, options.accounts, progress)
    run.settings = durability_settings(db)
    run.durable = is_durable(name, run.settings)
    progress.line(f"{name}: settings {_settings_text(run.settings)}")
    run.phases = _run_phases(name, target.url, fixture, options, progress)
    progress.step(f"{name}: verifying the ledger (fold of every posting)", VERIFY_ESTIMATE_SECONDS)
    run.checks = verify(db, _expected(run.phases, options.accounts), progress)
    for check in run.checks:
        progress.heartbeat(f"{'ok ' if check.ok else 'BAD'} {check.name}: {check.detail}")
    progress.line(f"{name}: ledger consistent: {'yes' if run.consistent else 'no'}")


def _settings_text(settings: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in settings.items())


def _run_phases(
    name: str, url: str, fixture: Fixture, options: Options, progress: Progress
) -> Phases:
    timing = Timing(WARMUP_SECONDS, options.seconds)
    writers = options.writers
    count_of_phases = options.phase_count(name)
    number = iter(range(1, count_of_phases + 1))

    def phase(label: str, workload: Workload, count: int, scope: str, postings: int) -> PhaseResult:
        title = f"{name}: phase {next(number)}/{count_of_phases} {label}, {count} writer(s)"
        progress.step(title, options.phase_seconds())
        specs = _specs(url, workload, count, fixture, scope)
        result = run_phase(label, specs, postings, timing, progress)
        progress.heartbeat(_phase_summary(result))
        return result

    postgres = name == POSTGRES
    raw = phase("raw INSERT+COMMIT", Workload.RAW, writers, "bench-raw", 0)
    raw_autocommit = None
    if postgres:
        raw_autocommit = phase(
            "raw INSERT, autocommit", Workload.RAW_AUTOCOMMIT, writers, "bench-raw", 0
        )
    transfers = phase("single transfers", Workload.TRANSFER, writers, TRANSFER_SCOPE, 2)
    in_transaction = None
    if postgres:
        in_transaction = phase(
            "transfers in BEGIN … COMMIT",
            Workload.TRANSFER_IN_TRANSACTION,
            writers,
            IN_TRANSACTION_SCOPE,
            2,
        )
    hot = phase("hot account transfers", Workload.HOT_TRANSFER, writers, HOT_SCOPE, 2)
    usage = [
        phase("usage batches", Workload.USAGE, count, _usage_scope(count), USAGE_LINES + 1)
        for count in dict.fromkeys((writers, 1))
    ]
    return Phases(raw, transfers, hot, tuple(usage), raw_autocommit, in_transaction)


def _usage_scope(writers: int) -> str:
    return f"bench-usage-{writers}w"


def _specs(
    url: str, workload: Workload, writers: int, fixture: Fixture, scope: str
) -> list[WorkerSpec]:
    return [
        WorkerSpec(
            url=url,
            workload=workload,
            writer=writer,
            account_ids=fixture.account_ids,
            revenue_id=fixture.revenue_id,
            key_scope=scope,
            seed=zlib.crc32(f"{scope}-{writer}".encode()),
            batch_lines=USAGE_LINES,
        )
        for writer in range(writers)
    ]


def _phase_summary(result: PhaseResult) -> str:
    text = (
        f"=> {result.measured_commits:,} commits in {result.measured_seconds:.2f} s: "
        f"{result.commits_per_second:,.1f} commits/s"
    )
    if result.postings_per_commit:
        text += f", {result.postings_per_second:,.0f} postings/s"
    return f"{text}; {cpu_text(result.cpu)}"


def _expected(phases: Phases, accounts: int) -> Expected:
    usage_batches = sum(phase.total_commits for phase in phases.usage)
    transfer_phases = {
        TRANSFER_SCOPE: phases.transfers,
        IN_TRANSACTION_SCOPE: phases.in_transaction,
        HOT_SCOPE: phases.hot,
    }
    transfer_commits = {
        scope: phase.total_commits for scope, phase in transfer_phases.items() if phase is not None
    }
    raw_phases = (phases.raw, phases.raw_autocommit)
    return Expected(
        raw_rows=sum(phase.total_commits for phase in raw_phases if phase is not None),
        transactions={
            TransactionKind.ADJUSTMENT: accounts,
            TransactionKind.TRANSFER: sum(transfer_commits.values()),
            TransactionKind.USAGE: usage_batches,
        },
        postings=2 * accounts
        + 2 * sum(transfer_commits.values())
        + (USAGE_LINES + 1) * usage_batches,
        idempotency_records={
            **transfer_commits,
            **{_usage_scope(phase.writers): phase.total_commits for phase in phases.usage},
        },
    )


def _report(runs: Sequence[DatabaseRun], options: Options) -> None:
    rows = [row for run in runs for row in rows_for(run)]
    print()
    print(table(rows))
    print("\nWhere the CPU went (per commit; machine busy = all CPUs, whoever used them):")
    print(cpu_table(runs))
    for run in runs:
        if run.error is not None:
            print(f"\n{run.name} failed: {run.error}")
    if options.json_path is not None:
        as_dict = asdict(options)
        as_dict["pg_url"] = _redacted(options.pg_url)
        write_json(options.json_path, document(runs, as_dict))
        print(f"\nfigures written to {options.json_path}")


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    raise SystemExit(main())
