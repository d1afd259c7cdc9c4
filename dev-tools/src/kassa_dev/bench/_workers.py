"""Writer processes. Each runs one workload in a loop until told to stop, counting commits.

Workers are separate processes (spawn context) so that eight writers are eight Python
interpreters: with threads the GIL would measure Python, not the ledger. Each worker has its own
engine from `make_engine` (the production client stack) and a one-connection pool.
"""

from __future__ import annotations

import ctypes
import random
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import psycopg
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Identity,
    Integer,
    MetaData,
    Table,
    Text,
    insert,
    text,
)

from kassa.db import Database, make_engine
from kassa.events.outbox import record
from kassa.ledger import transfers
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.model import TransactionKind
from kassa.ledger.transfers import Leg
from kassa.money import USD, Money

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

MAX_TRANSFER_MINOR = 10_000
"""Largest transfer, micro-USD (one cent): accounts funded with a million dollars never run dry."""
MAX_USAGE_LINE_MINOR = 10_000
"""Largest usage line, micro-USD."""

SCRATCH_METADATA = MetaData()
bench_raw = Table(
    "bench_raw",
    SCRATCH_METADATA,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        Identity(),
        primary_key=True,
        autoincrement=True,
    ),
    Column("payload", Text, nullable=False),
)
"""Scratch table for the raw INSERT+COMMIT baseline; only ever created in a bench database."""


class Workload(StrEnum):
    RAW = "raw"
    RAW_AUTOCOMMIT = "raw_autocommit"
    """The raw insert as one autocommit statement: one round trip, like `commit_transfer`."""
    TRANSFER = "transfer"
    """`transfers.commit_transfer`: the transfer is the unit of work (one round trip on PG)."""
    TRANSFER_IN_TRANSACTION = "transfer_in_transaction"
    """`transfers.transfer` inside `db.transaction()`: BEGIN, the call, COMMIT."""
    HOT_TRANSFER = "hot_transfer"
    """`commit_transfer` from a random user account into house revenue: one hot account."""
    USAGE = "usage"
    USAGE_EVENT = "usage_event"
    """A usage batch that also writes its event into the outbox (the webhook benchmark)."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    url: str
    workload: Workload
    writer: int
    account_ids: tuple[int, ...]
    revenue_id: int
    key_scope: str
    seed: int
    batch_lines: int


@dataclass(frozen=True, slots=True)
class WorkerReport:
    status: str
    """'ready', 'done' or 'failed'."""
    writer: int
    commits: int
    error: str | None = None
    backend_pid: int | None = None
    """The PostgreSQL backend serving this writer (None on SQLite)."""


@dataclass(frozen=True, slots=True)
class Shared:
    """What the coordinator and the workers share: per-writer commit counters (each written
    by its writer only), the stop flag, the start signal and the report queue."""

    counters: ctypes.Array[ctypes.c_int64]
    stop: ctypes.c_bool
    go: Event
    reports: Queue[WorkerReport]


Step = Callable[[int], None]
"""One unit of work (one committed database transaction); the argument numbers it."""


def run_worker(spec: WorkerSpec, shared: Shared) -> None:
    """Process entry point. SIGINT is ignored: the coordinator stops workers with the flag."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    db = Database(make_engine(spec.url, pool_size=1))
    try:
        step = make_step(spec, db)
        with db.transaction() as conn:  # connect before the start signal
            backend_pid = _backend_pid(conn)
        shared.reports.put(WorkerReport("ready", spec.writer, 0, backend_pid=backend_pid))
        shared.go.wait()
        commits = _loop(step, spec.writer, shared)
        shared.reports.put(WorkerReport("done", spec.writer, commits))
    except Exception:
        commits = int(shared.counters[spec.writer])
        shared.reports.put(WorkerReport("failed", spec.writer, commits, traceback.format_exc()))
    finally:
        db.dispose()


def _backend_pid(conn: Connection) -> int | None:
    if conn.dialect.name != "postgresql":
        conn.execute(text("SELECT 1"))
        return None
    pid: int = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def _loop(step: Step, writer: int, shared: Shared) -> int:
    done = 0
    while not shared.stop.value:
        step(done)
        done += 1
        shared.counters[writer] = done
    return done


def make_step(spec: WorkerSpec, db: Database) -> Step:
    makers = {
        Workload.RAW: _raw_step,
        Workload.RAW_AUTOCOMMIT: _raw_autocommit_step,
        Workload.TRANSFER: _transfer_step,
        Workload.TRANSFER_IN_TRANSACTION: _transfer_step,
        Workload.HOT_TRANSFER: _transfer_step,
        Workload.USAGE: _usage_step,
        Workload.USAGE_EVENT: _usage_step,
    }
    return makers[spec.workload](spec, db)


def _ledger_now(db: Database) -> datetime | None:
    """None on PostgreSQL (the stored function reads the database clock), else clock time."""
    return None if db.dialect == "postgresql" else datetime.now(UTC)


def _raw_step(spec: WorkerSpec, db: Database) -> Step:
    def step(i: int) -> None:
        with db.transaction() as conn:
            conn.execute(insert(bench_raw).values(payload=f"{spec.writer}-{i}"))

    return step


def _raw_autocommit_step(spec: WorkerSpec, db: Database) -> Step:
    """The raw insert as one statement on the driver connection in autocommit, prepared: the
    same driver path as `commit_transfer`, so the ceiling for a one-round-trip unit of work."""
    if db.dialect != "postgresql":
        return _raw_step(spec, db)
    sql = "INSERT INTO bench_raw (payload) VALUES (%s)"

    def step(i: int) -> None:
        pooled = db.engine.raw_connection()
        try:
            driver = pooled.driver_connection
            assert isinstance(driver, psycopg.Connection)  # noqa: S101 - PostgreSQL only
            driver.autocommit = True
            try:
                driver.execute(sql, (f"{spec.writer}-{i}",), prepare=True)
            finally:
                driver.autocommit = False
        finally:
            pooled.close()

    return step


def _transfer_step(spec: WorkerSpec, db: Database) -> Step:
    rng = random.Random(spec.seed)  # noqa: S311 - load generation, not security
    hot = spec.workload is Workload.HOT_TRANSFER
    in_transaction = spec.workload is Workload.TRANSFER_IN_TRANSACTION

    def step(i: int) -> None:
        if hot:
            debit, credit = rng.choice(spec.account_ids), spec.revenue_id
        else:
            debit, credit = rng.sample(spec.account_ids, 2)
        amount = Money(rng.randint(1, MAX_TRANSFER_MINOR), USD)
        request = Request.of(
            IdempotencyKey(spec.key_scope, f"{spec.writer}-{i}"),
            "transfer",
            {"debit_account_id": debit, "credit_account_id": credit, "amount": amount.to_json()},
        )
        if in_transaction:
            with db.transaction() as conn:
                transfers.transfer(
                    conn,
                    debit_account_id=debit,
                    credit_account_id=credit,
                    amount=amount,
                    now=_ledger_now(db),
                    request=request,
                )
            return
        transfers.commit_transfer(
            db,
            debit_account_id=debit,
            credit_account_id=credit,
            amount=amount,
            now=_ledger_now(db),
            request=request,
        )

    return step


def _usage_step(spec: WorkerSpec, db: Database) -> Step:
    rng = random.Random(spec.seed)  # noqa: S311 - load generation, not security
    with_event = spec.workload is Workload.USAGE_EVENT

    def step(i: int) -> None:
        users = rng.choices(spec.account_ids, k=spec.batch_lines)
        amounts = [rng.randint(1, MAX_USAGE_LINE_MINOR) for _ in users]
        legs = [Leg(user, Money(amount, USD)) for user, amount in zip(users, amounts, strict=True)]
        legs.append(Leg(spec.revenue_id, Money(-sum(amounts), USD)))
        request = Request.of(
            IdempotencyKey(spec.key_scope, f"{spec.writer}-{i}"),
            "usage",
            {"lines": list(zip(users, amounts, strict=True)), "revenue": spec.revenue_id},
        )
        with db.transaction() as conn:
            posted = transfers.post(
                conn,
                legs,
                kind=TransactionKind.USAGE,
                now=_ledger_now(db),
                request=request,
                memo="bench usage batch",
            )
            if with_event:
                record(
                    conn,
                    # Usage emits no event in Kassa; here each posting writes one catalogued
                    # event, the way a deposit credit or a payout step does, to price it.
                    type="deposit.credited",
                    subject_kind="deposit",
                    subject_id=f"{spec.key_scope}-{spec.writer}-{i}",
                    data={"transaction_id": str(posted), "lines": len(users)},
                    at=datetime.now(UTC),
                )

    return step
