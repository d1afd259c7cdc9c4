"""Is the ledger still consistent after the benchmark, and does it hold what was counted?

The fold is done here, in Python integers, over every posting — not by the database's SUM
(SQLite stores amounts as text, and a checker should not trust the arithmetic it checks).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, func, select

from kassa.db import Database
from kassa.ledger.journal import available
from kassa.ledger.model import TransactionKind
from kassa.ledger.tables import (
    idempotency_record,
    ledger_account,
    ledger_posting,
    ledger_transaction,
)
from kassa_dev.bench._progress import Heartbeat, Progress
from kassa_dev.bench._workers import bench_raw

STREAM_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Expected:
    """What the phases committed (warm-up included), from the workers' own counters."""

    raw_rows: int
    transactions: Mapping[TransactionKind, int]
    postings: int
    idempotency_records: Mapping[str, int] = field(default_factory=dict)
    """Completed ('ok') records per bench key scope."""


@dataclass(slots=True)
class Fold:
    per_asset: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    debits: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    credits: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    asset_of: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    postings: int = 0


def verify(db: Database, expected: Expected, progress: Progress) -> list[Check]:
    with db.engine.connect() as conn:
        fold = _fold_postings(conn, progress)
        return [
            _check_zero_sum(fold),
            _check_running_sums(conn, fold),
            _check_no_overdraft(conn),
            _check_counts(conn, expected, fold),
            _check_idempotency(conn, expected),
        ]


def consistent(checks: list[Check]) -> bool:
    return all(check.ok for check in checks)


def _fold_postings(conn: Connection, progress: Progress) -> Fold:
    fold = Fold()
    heartbeat = Heartbeat()
    rows = conn.execution_options(stream_results=True, yield_per=STREAM_ROWS).execute(
        select(ledger_posting.c.account_id, ledger_posting.c.asset, ledger_posting.c.amount)
    )
    for account_id, asset_code, amount in rows:
        fold.per_asset[asset_code] += amount
        if amount > 0:
            fold.debits[account_id] += amount
        else:
            fold.credits[account_id] -= amount
        fold.asset_of[account_id].add(asset_code)
        fold.postings += 1
        if heartbeat.due():
            progress.heartbeat(f"folding postings: {fold.postings:,} so far")
    return fold


def _check_zero_sum(fold: Fold) -> Check:
    nonzero = {code: total for code, total in fold.per_asset.items() if total}
    detail = f"{fold.postings:,} postings; per-asset sums {dict(fold.per_asset)}"
    return Check("postings sum to zero per asset", not nonzero, detail)


def _check_running_sums(conn: Connection, fold: Fold) -> Check:
    mismatched = []
    accounts = 0
    for row in conn.execute(select(ledger_account)):
        accounts += 1
        stored = (row.debits_posted, row.credits_posted, row.debits_pending, row.credits_pending)
        folded = (fold.debits.get(row.id, 0), fold.credits.get(row.id, 0), 0, 0)
        if stored != folded or not fold.asset_of.get(row.id, set()) <= {row.asset}:
            mismatched.append(row.code)
    detail = f"{accounts:,} accounts; mismatched: {mismatched[:5] or 'none'}"
    return Check("stored sums equal the fold of postings (no holds open)", not mismatched, detail)


def _check_no_overdraft(conn: Connection) -> Check:
    below = [
        row.code
        for row in conn.execute(select(ledger_account).where(~ledger_account.c.allow_negative))
        if available(
            row.normal_side,
            row.debits_posted,
            row.credits_posted,
            row.debits_pending,
            row.credits_pending,
        )
        < 0
    ]
    return Check("no user account below zero", not below, f"below zero: {below[:5] or 'none'}")


def _check_counts(conn: Connection, expected: Expected, fold: Fold) -> Check:
    counted = conn.execute(
        select(ledger_transaction.c.kind, func.count()).group_by(ledger_transaction.c.kind)
    ).all()
    kinds = {kind: count for kind, count in counted}
    found = {kind: kinds.get(str(kind), 0) for kind in expected.transactions}
    raw_rows = conn.execute(select(func.count()).select_from(bench_raw)).scalar_one()
    ok = (
        found == dict(expected.transactions)
        and fold.postings == expected.postings
        and raw_rows == expected.raw_rows
    )
    detail = (
        f"transactions {_plain(found)} (counted {_plain(expected.transactions)}); "
        f"postings {fold.postings:,} (counted {expected.postings:,}); "
        f"raw rows {raw_rows:,} (counted {expected.raw_rows:,})"
    )
    return Check("every counted commit is in the database, nothing more", ok, detail)


def _check_idempotency(conn: Connection, expected: Expected) -> Check:
    rows = conn.execute(
        select(idempotency_record.c.scope, idempotency_record.c.outcome, func.count())
        .where(idempotency_record.c.scope.in_(list(expected.idempotency_records)))
        .group_by(idempotency_record.c.scope, idempotency_record.c.outcome)
    ).all()
    found: dict[str, int] = defaultdict(int)
    not_ok = 0
    for scope, outcome, count in rows:
        found[scope] += count
        not_ok += count if outcome != "ok" else 0
    found_per_scope = {scope: found.get(scope, 0) for scope in expected.idempotency_records}
    ok = found_per_scope == dict(expected.idempotency_records) and not not_ok
    detail = (
        f"records {found_per_scope} (counted {dict(expected.idempotency_records)}); "
        f"not ok: {not_ok}"
    )
    return Check("one completed idempotency record per keyed commit", ok, detail)


def _plain(counts: Mapping[TransactionKind, int]) -> dict[str, int]:
    return {str(kind): count for kind, count in counts.items()}
