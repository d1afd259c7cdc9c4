"""The journal: the one place balances change.

Design
------
Every change to a ledger account goes through `post`: a list of `Line`s, each moving an
account's posted sums (a signed posting: + debit, − credit) and/or its pending sums (holds).
Posted lines must sum to zero per asset and pending debits must equal pending credits per
asset; a transaction with posted lines has at least two postings. Postings and transactions
are append-only (database triggers refuse UPDATE and DELETE); corrections are reversals.

Within the caller's database transaction, `post`:
1. claims the idempotency key, if one is given (a replay returns the stored outcome);
2. locks every touched account row in ascending id order (no deadlocks between entries);
3. checks, before writing anything, that every running sum of every touched account stays within
   0 … `MAX_AMOUNT` (2**256−1 minor units, the range `Money` and the `Amount` column promise) and
   its available balance within ±`MAX_AMOUNT`, so every balance stays readable as `Money`;
   an entry that would leave one outside is refused whole (`SumOutOfRange`, nothing written).
   Then that no account that may not go negative has its available
   balance (posted − pending outgoing) reduced below zero — unless the entry is a forced
   reversal, which may, leaving the account frozen until credits cover it;
4. inserts the transaction and its postings and updates the four running sums per account;
5. completes the idempotency record.

Two implementations share these rules: `PortableJournal` (SQLAlchemy Core; used on SQLite, and
runnable on PostgreSQL) and `PostgresJournal`, which does steps 1–5 in one statement through the
stored function `kassa_post_entry` (migration 0001). The property tests run both. A two-line
entry that posts opposite amounts to two accounts and moves no pending sums (a transfer, an
adjustment, a two-line reversal) goes to `kassa_post_pair` (migration 0020) instead: the same
rules in the same order without arrays, about half the server's CPU of the general function;
`tests/ledger/test_post_pair.py` holds the two to the same answers and rows.

An entry that is its caller's whole unit of work goes through `post_alone` instead: on PostgreSQL
the statement is then the transaction (autocommit), one round trip with no BEGIN or COMMIT, so
the accounts it locks — a house account every transfer credits, say — are held only while the
function runs and the commit is flushed, never while the client is between statements.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import psycopg
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from kassa.db import Database, driver
from kassa.errors import InvalidRequest, KassaError
from kassa.ledger import idempotency
from kassa.ledger.errors import (
    AccountFrozen,
    AccountNotFound,
    InsufficientFunds,
    LedgerInvariantBroken,
    UnbalancedTransaction,
)
from kassa.ledger.idempotency import OK, Claim, Request, StoredOutcome
from kassa.ledger.model import AccountKind, NormalSide, TransactionKind
from kassa.ledger.tables import (
    ledger_account,
    ledger_posting,
    ledger_transaction,
)
from kassa.money import MAX_AMOUNT, Money, asset


class SumOutOfRange(InvalidRequest):
    """The entry would leave a running sum or a balance beyond `MAX_AMOUNT`: refused whole.

    Not a recorded refusal: nothing of the unit of work is kept, so a retry meets the same
    state and gets the same answer. Same code as `kassa.money.AmountOutOfRange`, which refuses
    a single amount beyond the range before it gets here."""

    code = "amount_out_of_range"
    title = "Amount out of range"


@dataclass(frozen=True, slots=True)
class Line:
    """One account's share of an entry, in minor units of the account's asset."""

    account_id: int
    posted: int = 0
    """Signed posting: positive debits the account, negative credits it; 0 for none."""
    pending_debits: int = 0
    """Change of the account's pending debits (+ reserve, − release)."""
    pending_credits: int = 0
    """Change of the account's pending credits."""
    asset: str | None = None
    """The asset the caller means; when given, the account must be in it."""


@dataclass(frozen=True, slots=True)
class Entry:
    lines: Sequence[Line]
    kind: TransactionKind
    memo: str | None = None
    actor: str | None = None
    reason: str | None = None
    reverses_id: uuid.UUID | None = None
    hold_id: uuid.UUID | None = None
    metadata: Mapping[str, Any] | None = None
    force: bool = False
    """Only for reversals: may take non-negative accounts below zero (they become frozen)."""
    transaction_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def has_postings(self) -> bool:
        return any(line.posted for line in self.lines)


@dataclass(frozen=True, slots=True)
class Posted:
    """The entry was applied; `transaction_id` is None when it only moved pending sums."""

    transaction_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class Replayed:
    stored: StoredOutcome


PostResult = Posted | Replayed


class Journal(Protocol):
    def post(
        self, conn: Connection, entry: Entry, now: datetime | None, request: Request | None
    ) -> PostResult:
        """Apply `entry` (or return the stored outcome of `request`'s key). Raises
        InsufficientFunds / AccountFrozen after storing the refusal under the key."""
        ...

    def post_many(
        self, conn: Connection, items: Sequence[tuple[Entry, Request | None]], now: datetime | None
    ) -> list[PostResult]:
        """`post` of each `(entry, request)`, in order: the same rows, answers and errors."""
        ...


def journal_for(conn: Connection) -> Journal:
    if conn.dialect.name == "postgresql":
        return POSTGRES_JOURNAL
    return PORTABLE_JOURNAL


def _validate_shape(entry: Entry) -> None:
    if not entry.lines:
        raise UnbalancedTransaction("an entry needs at least one line")
    for line in entry.lines:
        for value in (line.posted, line.pending_debits, line.pending_credits):
            if type(value) is not int:
                raise TypeError("ledger lines carry int minor units")
            if abs(value) > MAX_AMOUNT:
                raise SumOutOfRange(_OUT_OF_RANGE)
    if entry.has_postings and sum(1 for line in entry.lines if line.posted) < 2:
        raise UnbalancedTransaction("a journal transaction needs at least two postings")
    if entry.force and entry.kind is not TransactionKind.REVERSAL:
        raise LedgerInvariantBroken("only reversals may force an account below zero")


def available(
    normal_side: str, debits: int, credits: int, debits_pending: int, credits_pending: int
) -> int:
    """Posted balance on the normal side minus pending outgoing."""
    if normal_side == NormalSide.CREDIT:
        return credits - debits - debits_pending
    return debits - credits - credits_pending


_OUT_OF_RANGE = (
    "this would take a balance or a running total beyond the largest amount Kassa can hold "
    "(2**256-1 minor units of the asset); nothing was changed"
)
_OUT_OF_RANGE_MARK = "kassa: sum out of range"
"""How `kassa_post_entry` (migration 0008) says the same."""


def in_range(normal_side: str, sums: tuple[int, int, int, int]) -> bool:
    """Each running sum (debits, credits, pending debits, pending credits) within 0 … MAX_AMOUNT
    and the available balance within ±MAX_AMOUNT. Then every figure of the account's
    `Balance` (posted, pending, available) is a valid `Money`."""
    return all(0 <= value <= MAX_AMOUNT for value in sums) and (
        abs(available(normal_side, *sums)) <= MAX_AMOUNT
    )


AccountNamer = Callable[[Connection, int], str | None]
"""How a refusal names a ledger account to the person who caused it, or None to use its code."""

_NAMERS: dict[AccountKind, AccountNamer] = {}


def name_accounts(kind: AccountKind, namer: AccountNamer) -> None:
    """Let the package that owns accounts of `kind` name them in refusals.

    The ledger knows a customer's balance only by its code (``user:<uuid>:USD``), an internal
    name a customer must never see; the customer accounts package knows the customer's own
    external id and registers it here (the ledger may not import it).
    """
    _NAMERS[kind] = namer


def _account_name(conn: Connection, account_code: str) -> str:
    row = conn.execute(
        select(ledger_account.c.id, ledger_account.c.kind).where(
            ledger_account.c.code == account_code
        )
    ).first()
    namer = None if row is None else _NAMERS.get(AccountKind(row.kind))
    name = None if row is None or namer is None else namer(conn, row.id)
    return account_code if name is None else repr(name)


def refusal(
    conn: Connection, code: str, account_code: str, asset_code: str, before: int, after: int
) -> KassaError:
    """The error for an entry that would take `account_code` from `before` to `after`, in the
    words of the account's owner (a customer reads its external id, never the ledger code)."""
    unit = asset(asset_code)
    have = Money(before, unit)
    need = Money(before - after, unit)
    name = _account_name(conn, account_code)
    if before < 0:
        return AccountFrozen(
            f"account {name} is frozen: its balance is {have} after a reversal; "
            "nothing can leave it until credits cover the shortfall"
        )
    return InsufficientFunds(f"account {name} has {have} available; this needs {need}")


# Built once: constructing Core statements per call was most of SQLite's time under its lock.
_LOCK_ACCOUNTS = (
    select(ledger_account)
    .where(ledger_account.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(ledger_account.c.id)
    .with_for_update()
)
_INSERT_TRANSACTION = insert(ledger_transaction)
_INSERT_POSTINGS = insert(ledger_posting)
_UPDATE_SUMS = (
    update(ledger_account)
    .where(ledger_account.c.id == bindparam("account_id"))
    .values(
        debits_posted=bindparam("dp"),
        credits_posted=bindparam("cp"),
        debits_pending=bindparam("dpend"),
        credits_pending=bindparam("cpend"),
    )
)


class PortableJournal:
    """SQLAlchemy Core implementation; runs on SQLite and PostgreSQL."""

    def post(
        self, conn: Connection, entry: Entry, now: datetime | None, request: Request | None
    ) -> PostResult:
        if now is None:
            raise LedgerInvariantBroken("the portable journal needs an explicit time")
        _validate_shape(entry)
        claimed = None
        if request is not None:
            result = idempotency.claim(conn, request, now)
            if isinstance(result, StoredOutcome):
                return Replayed(result)
            claimed = result
        try:
            transaction_id = self._apply(conn, entry, now)
        except (InsufficientFunds, AccountFrozen) as refused:
            if claimed is not None:
                idempotency.complete_refused(conn, claimed, refused)
            raise
        if claimed is not None:
            resource = str(transaction_id) if transaction_id else None
            idempotency.complete(conn, claimed, OK, resource, None)
        return Posted(transaction_id)

    def post_many(
        self, conn: Connection, items: Sequence[tuple[Entry, Request | None]], now: datetime | None
    ) -> list[PostResult]:
        """One entry after another: SQLite has no round trips to save."""
        return [self.post(conn, entry, now, request) for entry, request in items]

    def _apply(self, conn: Connection, entry: Entry, now: datetime) -> uuid.UUID | None:
        ids = sorted({line.account_id for line in entry.lines})
        sqlite = conn.dialect.name == "sqlite"
        rows = _sqlite_accounts(conn, ids) if sqlite else _locked_accounts(conn, ids)
        missing = [i for i in ids if i not in rows]
        if missing:
            raise AccountNotFound(f"ledger accounts {missing} do not exist")
        for line in entry.lines:
            if line.asset is not None and line.asset != rows[line.account_id].asset:
                raise UnbalancedTransaction(
                    f"account {rows[line.account_id].code} holds {rows[line.account_id].asset}, "
                    f"not {line.asset}"
                )

        deltas: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        posted_per_asset: dict[str, int] = defaultdict(int)
        pending_per_asset: dict[str, int] = defaultdict(int)
        for line in entry.lines:
            d = deltas[line.account_id]
            d[0] += max(line.posted, 0)
            d[1] += max(-line.posted, 0)
            d[2] += line.pending_debits
            d[3] += line.pending_credits
            account_asset = rows[line.account_id].asset
            posted_per_asset[account_asset] += line.posted
            pending_per_asset[account_asset] += line.pending_debits - line.pending_credits
        unbalanced = {a: s for a, s in posted_per_asset.items() if s} | {
            f"{a} (pending)": s for a, s in pending_per_asset.items() if s
        }
        if unbalanced:
            raise UnbalancedTransaction(f"entry does not balance: {unbalanced}")

        new_sums = {account_id: _add(rows[account_id], deltas[account_id]) for account_id in ids}
        for account_id, sums in new_sums.items():
            row = rows[account_id]
            if sums[2] < 0 or sums[3] < 0:
                raise LedgerInvariantBroken(f"pending sums of account {row.code} would go negative")
            if not in_range(row.normal_side, sums):
                raise SumOutOfRange(_OUT_OF_RANGE)
        for account_id, sums in new_sums.items():
            row = rows[account_id]
            before = available(
                row.normal_side,
                row.debits_posted,
                row.credits_posted,
                row.debits_pending,
                row.credits_pending,
            )
            after = available(row.normal_side, *sums)
            if not row.allow_negative and after < 0 and after < before and not entry.force:
                code = AccountFrozen.code if before < 0 else InsufficientFunds.code
                raise refusal(conn, code, row.code, row.asset, before, after)

        write = _sqlite_write if sqlite else _portable_write
        write(conn, entry, now, rows, new_sums)
        return entry.transaction_id if entry.has_postings else None


def _entry_row(entry: Entry, now: datetime) -> dict[str, Any]:
    """The `ledger_transaction` row of an entry with postings."""
    return {
        "id": entry.transaction_id,
        "kind": str(entry.kind),
        "memo": entry.memo,
        "actor": entry.actor,
        "reason": entry.reason,
        "reverses_id": entry.reverses_id,
        "hold_id": entry.hold_id,
        "metadata_json": _metadata_json(entry.metadata),
        "created_at": now,
    }


def _posting_rows(entry: Entry, rows: Mapping[int, _Account]) -> list[dict[str, Any]]:
    """The `ledger_posting` rows of an entry: its non-zero lines."""
    return [
        {
            "transaction_id": entry.transaction_id,
            "account_id": line.account_id,
            "asset": rows[line.account_id].asset,
            "amount": line.posted,
        }
        for line in entry.lines
        if line.posted
    ]


def _sums_rows(new_sums: Mapping[int, tuple[int, int, int, int]]) -> list[dict[str, Any]]:
    """The parameters of the running sums' update, one set per account."""
    return [
        {"account_id": i, "dp": s[0], "cp": s[1], "dpend": s[2], "cpend": s[3]}
        for i, s in new_sums.items()
    ]


def _portable_write(
    conn: Connection,
    entry: Entry,
    now: datetime,
    rows: Mapping[int, _Account],
    new_sums: Mapping[int, tuple[int, int, int, int]],
) -> None:
    """`PortableJournal._apply`'s writes through SQLAlchemy, checks done: the entry, its
    postings, the accounts' new sums."""
    if entry.has_postings:
        conn.execute(_INSERT_TRANSACTION, _entry_row(entry, now))
        conn.execute(_INSERT_POSTINGS, _posting_rows(entry, rows))
    conn.execute(_UPDATE_SUMS, _sums_rows(new_sums))


class _Account(NamedTuple):
    """What posting reads of a ledger account (locked on PostgreSQL)."""

    id: int
    code: str
    asset: str
    normal_side: str
    allow_negative: bool
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int


_ACCOUNT_COLUMNS = (
    "id, code, asset, normal_side, allow_negative, "
    "debits_posted, credits_posted, debits_pending, credits_pending"
)


def _locked_accounts(conn: Connection, ids: Sequence[int]) -> dict[int, _Account]:
    return {
        row.id: _Account(
            row.id,
            row.code,
            row.asset,
            row.normal_side,
            row.allow_negative,
            row.debits_posted,
            row.credits_posted,
            row.debits_pending,
            row.credits_pending,
        )
        for row in conn.execute(_LOCK_ACCOUNTS, {"ids": ids})
    }


# SQLite: the same four statements straight to the driver (`kassa.db.driver`): through
# SQLAlchemy they cost a fifth of a usage POST's CPU. The unit holds SQLite's write lock
# (BEGIN IMMEDIATE), so the read needs no row lock. Values go as the column types store them:
# amounts as decimal text, ids as 32 hex digits, times as naive UTC text.
_SQLITE_INSERT_TRANSACTION = """
    INSERT INTO ledger_transaction
        (id, kind, memo, actor, reason, reverses_id, hold_id, metadata_json, created_at)
    VALUES
        (:id, :kind, :memo, :actor, :reason, :reverses_id, :hold_id, :metadata_json, :created_at)
"""
_SQLITE_INSERT_POSTING = """
    INSERT INTO ledger_posting (transaction_id, account_id, asset, amount)
    VALUES (:transaction_id, :account_id, :asset, :amount)
"""
_SQLITE_UPDATE_SUMS = """
    UPDATE ledger_account
    SET debits_posted = :dp, credits_posted = :cp, debits_pending = :dpend,
        credits_pending = :cpend
    WHERE id = :account_id
"""


def _sqlite_accounts(conn: Connection, ids: Sequence[int]) -> dict[int, _Account]:
    # Only placeholders are interpolated: the ids go as parameters.
    marks = ", ".join(f":id{n}" for n in range(len(ids)))
    sql = f"SELECT {_ACCOUNT_COLUMNS} FROM ledger_account WHERE id IN ({marks}) ORDER BY id"  # noqa: S608
    found = driver.rows(conn, sql, {f"id{n}": account_id for n, account_id in enumerate(ids)})
    return {
        row[0]: _Account(
            row[0],
            row[1],
            row[2],
            row[3],
            bool(row[4]),
            int(row[5]),
            int(row[6]),
            int(row[7]),
            int(row[8]),
        )
        for row in found
    }


def _sqlite_uuid(value: uuid.UUID | None) -> str | None:
    return None if value is None else driver.uuid_text(value)


def _sqlite_write(
    conn: Connection,
    entry: Entry,
    now: datetime,
    rows: Mapping[int, _Account],
    new_sums: Mapping[int, tuple[int, int, int, int]],
) -> None:
    """`_portable_write` on SQLite straight to the driver: the same rows, with their values as
    the column types store them."""
    if entry.has_postings:
        row = _entry_row(entry, now)
        row |= {
            "id": driver.uuid_text(entry.transaction_id),
            "reverses_id": _sqlite_uuid(entry.reverses_id),
            "hold_id": _sqlite_uuid(entry.hold_id),
            "created_at": driver.time_text(now),
        }
        driver.rows(conn, _SQLITE_INSERT_TRANSACTION, row)
        postings = _posting_rows(entry, rows)
        for posting in postings:
            posting |= {"transaction_id": row["id"], "amount": str(posting["amount"])}
        driver.many(conn, _SQLITE_INSERT_POSTING, postings)
    sums = _sums_rows(new_sums)
    for one in sums:
        one |= {key: str(one[key]) for key in ("dp", "cp", "dpend", "cpend")}
    driver.many(conn, _SQLITE_UPDATE_SUMS, sums)


def _add(row: Any, delta: Sequence[int]) -> tuple[int, int, int, int]:
    """An account's four running sums after `delta` (same order as the columns)."""
    return (
        row.debits_posted + delta[0],
        row.credits_posted + delta[1],
        row.debits_pending + delta[2],
        row.credits_pending + delta[3],
    )


_POST_ENTRY_SQL = """
    SELECT outcome, resource_id, stored_operation, stored_fingerprint, replayed,
           refused_account_code, refused_asset, available_before, available_after
    FROM kassa_post_entry(
        %(txn_id)s, %(kind)s, %(memo)s, %(actor)s, %(reason)s, %(reverses_id)s, %(hold_id)s,
        %(metadata)s, %(account_ids)s, %(assets)s, %(posted)s::numeric[],
        %(pending_debits)s::numeric[], %(pending_credits)s::numeric[], %(force)s, %(now)s,
        %(idem_scope)s, %(idem_key)s, %(idem_operation)s, %(idem_fingerprint)s)
"""


class PostgresJournal:
    """One round trip per entry through the stored function `kassa_post_entry` (or
    `kassa_post_pair` for two lines); one per batch of entries through `post_many`."""

    def post(
        self, conn: Connection, entry: Entry, now: datetime | None, request: Request | None
    ) -> PostResult:
        if request is not None and request.claimed is not None:
            return self._post_claimed(conn, entry, now, request.claimed)
        _validate_shape(entry)
        pair = _pair_params(entry, now, request, alone=False)
        try:
            # Straight to the driver: SQLAlchemy's execute path costs more client CPU than the
            # call itself (most entries are two lines: `kassa_post_pair`).
            if pair is None:
                (raw,) = driver.rows(conn, _POST_ENTRY_SQL, self._params(entry, now, request))
            else:
                (raw,) = driver.rows(conn, _POST_PAIR_SQL, pair)
            row = _FunctionOutcome._make(raw)
        except (IntegrityError, DataError) as failed:
            # Same refusals as the portable journal; the transaction is aborted either way.
            refused = _function_refusal(entry, str(failed.orig))
            if refused is None:
                raise
            raise refused from failed
        return self._result(conn, entry, request, row)

    def post_many(
        self, conn: Connection, items: Sequence[tuple[Entry, Request | None]], now: datetime | None
    ) -> list[PostResult]:
        """`post` of each `(entry, request)` in order, the function calls sent in one pipeline
        (one round trip for the batch, `driver.pipelined`) inside a savepoint. When one of
        them fails or is refused, the batch goes back to the savepoint and is posted again one
        entry at a time, which raises (and stores under its key) exactly what `post` would."""
        if len(items) < 2 or any(r is not None and r.claimed is not None for _, r in items):
            return [self.post(conn, entry, now, request) for entry, request in items]
        try:
            for entry, _ in items:
                _validate_shape(entry)
        except (KassaError, TypeError):
            # Posted one by one, the entries before the malformed one stand, as with `post`.
            return [self.post(conn, entry, now, request) for entry, request in items]
        calls: list[tuple[str, Mapping[str, Any]]] = []
        for entry, request in items:
            pair = _pair_params(entry, now, request, alone=False)
            if pair is None:
                calls.append((_POST_ENTRY_SQL, self._params(entry, now, request)))
            else:
                calls.append((_POST_PAIR_SQL, pair))
        savepoint = conn.begin_nested()
        try:
            rows = [_FunctionOutcome._make(raw) for (raw,) in driver.pipelined(conn, calls)]
        except DBAPIError:
            rows = None
        if rows is None or any(not row.replayed and row.outcome != OK for row in rows):
            savepoint.rollback()
            return [self.post(conn, entry, now, request) for entry, request in items]
        savepoint.commit()
        return [
            self._result(conn, entry, request, row)
            for (entry, request), row in zip(items, rows, strict=True)
        ]

    @staticmethod
    def _result(
        conn: Connection, entry: Entry, request: Request | None, row: _FunctionOutcome
    ) -> PostResult:
        """What a call of the posting function answered, as `post` returns it (a refusal
        stored under the key and raised)."""
        if row.replayed:
            if request is None:
                raise LedgerInvariantBroken("a replay without an idempotency key")
            return Replayed(
                idempotency.replayed(
                    request,
                    row.stored_operation,
                    row.stored_fingerprint,
                    row.outcome,
                    row.resource_id,
                    None if row.outcome == OK else idempotency.stored_detail(conn, request),
                )
            )
        if row.outcome == OK:
            return Posted(entry.transaction_id if entry.has_postings else None)
        error = refusal(
            conn,
            row.outcome,
            row.refused_account_code,
            row.refused_asset,
            int(row.available_before),
            int(row.available_after),
        )
        if request is not None:
            idempotency.complete_refused_by_key(conn, request, error)
        raise error

    def _post_claimed(
        self, conn: Connection, entry: Entry, now: datetime | None, claimed: Claim
    ) -> PostResult:
        """The caller claimed the key in this transaction already (the API does): post without
        it, then complete that record as the stored function would have."""
        try:
            result = self.post(conn, entry, now, None)
        except (InsufficientFunds, AccountFrozen) as refused:
            idempotency.complete_refused(conn, claimed, refused)
            raise
        if not isinstance(result, Posted):
            raise LedgerInvariantBroken("a post without an idempotency key was replayed")
        resource = str(result.transaction_id) if result.transaction_id else None
        idempotency.complete(conn, claimed, OK, resource, None)
        return result

    @staticmethod
    def _params(entry: Entry, now: datetime | None, request: Request | None) -> dict[str, Any]:
        return {
            **_header_params(entry),
            "account_ids": [line.account_id for line in entry.lines],
            "assets": [line.asset for line in entry.lines],
            # Python ints: psycopg sends each list as the narrowest integer array that holds
            # it (numeric beyond bigint) and the query casts it; Decimals cost ~10 µs a line.
            "posted": [line.posted for line in entry.lines],
            "pending_debits": [line.pending_debits for line in entry.lines],
            "pending_credits": [line.pending_credits for line in entry.lines],
            "force": entry.force,
            "now": now,
            **_idempotency_params(request),
        }


_POST_PAIR_SQL = """
    SELECT outcome, resource_id, stored_operation, stored_fingerprint, replayed,
           refused_account_code, refused_asset, available_before, available_after
    FROM kassa_post_pair(
        %(txn_id)s, %(kind)s, %(memo)s, %(actor)s, %(reason)s, %(reverses_id)s, %(hold_id)s,
        %(metadata)s, %(first_id)s, %(first_asset)s, %(second_id)s, %(second_asset)s,
        %(amount)s::numeric, %(force)s, %(now)s, %(alone)s,
        %(idem_scope)s, %(idem_key)s, %(idem_operation)s, %(idem_fingerprint)s)
"""


class _FunctionOutcome(NamedTuple):
    """What `kassa_post_entry` and `kassa_post_pair` return (`_POST_ENTRY_SQL`,
    `_POST_PAIR_SQL`)."""

    outcome: str
    resource_id: str | None
    # Set when the key was replayed (`replayed`): what the key was first used for.
    stored_operation: Any
    stored_fingerprint: Any
    replayed: bool
    # Set when the entry was refused (`outcome` is then the refusal's code).
    refused_account_code: Any
    refused_asset: Any
    available_before: Any
    available_after: Any


_POST_PAIR_ALONE_SQL = """
    SELECT outcome, resource_id, stored_operation, stored_fingerprint, replayed
    FROM kassa_post_pair(
        %(txn_id)s, %(kind)s, %(memo)s, %(actor)s, %(reason)s, %(reverses_id)s, %(hold_id)s,
        %(metadata)s, %(first_id)s, %(first_asset)s, %(second_id)s, %(second_asset)s,
        %(amount)s::numeric, %(force)s, %(now)s, %(alone)s,
        %(idem_scope)s, %(idem_key)s, %(idem_operation)s, %(idem_fingerprint)s)
"""


def _pair_params(
    entry: Entry, now: datetime | None, request: Request | None, *, alone: bool
) -> dict[str, Any] | None:
    """The parameters of `kassa_post_pair` (migration 0020) when `entry` is two lines that post
    opposite non-zero amounts to two different accounts and move no pending sums — a
    transfer, an adjustment, a two-line reversal — else None (`kassa_post_entry` takes it).
    Call after `_validate_shape`."""
    lines = entry.lines
    if len(lines) != 2:
        return None
    first, second = lines
    amount = first.posted
    if (
        amount == 0
        or second.posted != -amount
        or first.account_id == second.account_id
        or first.pending_debits
        or first.pending_credits
        or second.pending_debits
        or second.pending_credits
    ):
        return None
    return {
        **_header_params(entry),
        "first_id": first.account_id,
        "first_asset": first.asset,
        "second_id": second.account_id,
        "second_asset": second.asset,
        "amount": amount,
        "force": entry.force,
        "now": now,
        "alone": alone,
        **_idempotency_params(request),
    }


def _function_refusal(entry: Entry, message: str) -> KassaError | None:
    """The portable journal's error for what `kassa_post_entry` raised, if it is one."""
    if "kassa: ledger accounts missing" in message:
        ids = sorted({line.account_id for line in entry.lines})
        return AccountNotFound(f"some of ledger accounts {ids} do not exist")
    if "kassa: entry does not balance" in message or "kassa: asset mismatch" in message:
        return UnbalancedTransaction(message.split("\n", 1)[0])
    if _OUT_OF_RANGE_MARK in message:
        return SumOutOfRange(_OUT_OF_RANGE)
    return None


def _header_params(entry: Entry) -> dict[str, Any]:
    """The journal entry's own columns, as both posting functions take them (a two-line entry
    always has postings, so its id is always sent)."""
    return {
        "txn_id": entry.transaction_id if entry.has_postings else None,
        "kind": str(entry.kind),
        "memo": entry.memo,
        "actor": entry.actor,
        "reason": entry.reason,
        "reverses_id": entry.reverses_id,
        "hold_id": entry.hold_id,
        "metadata": _metadata_json(entry.metadata),
    }


def _idempotency_params(request: Request | None) -> dict[str, Any]:
    """The key an entry is posted under, as both posting functions take it."""
    return {
        "idem_scope": request.key.scope if request else None,
        "idem_key": request.key.key if request else None,
        "idem_operation": request.operation if request else None,
        "idem_fingerprint": request.fingerprint if request else None,
    }


def _metadata_json(metadata: Mapping[str, Any] | None) -> str | None:
    if not metadata:
        return None
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"))


PORTABLE_JOURNAL = PortableJournal()
POSTGRES_JOURNAL = PostgresJournal()


def post_alone(
    db: Database, entry: Entry, now: datetime | None, request: Request | None
) -> PostResult:
    """Apply `entry` as a unit of work of its own, committed when this returns.

    On PostgreSQL it is one round trip: the call of `kassa_post_entry_alone` (migration 0017)
    is the whole transaction, sent on the driver connection in autocommit as a prepared
    statement. No BEGIN, no COMMIT, no idle time in transaction: the entry's accounts stay
    locked only while the function runs and its commit is flushed, which is what lets many
    writers post to one hot account. An entry the function refuses (insufficient funds, a
    frozen account) rolls back whole and is redone in an ordinary transaction, which stores the
    refusal and its detail under the key like every other path. On SQLite it is
    `journal_for(conn).post` in `db.transaction()`."""
    if request is not None and request.claimed is not None:
        raise LedgerInvariantBroken("a key claimed in another transaction cannot post alone")
    if db.dialect != "postgresql":
        return _post_in_transaction(db, entry, now, request)
    _validate_shape(entry)
    pair = _pair_params(entry, now, request, alone=True)
    try:
        if pair is None:
            row = _call_alone(db, PostgresJournal._params(entry, now, request))
        else:
            row = _call_alone(db, pair, _POST_PAIR_ALONE_SQL)
    except DBAPIError as failed:
        message = str(failed.orig)
        if _REFUSED_ALONE_MARK in message:
            return _post_in_transaction(db, entry, now, request)
        refused = _function_refusal(entry, message)
        if refused is None:
            raise
        raise refused from failed
    outcome, resource_id, stored_operation, stored_fingerprint, was_replayed = row
    if not was_replayed:
        return Posted(entry.transaction_id if entry.has_postings else None)
    if request is None:
        raise LedgerInvariantBroken("a replay without an idempotency key")
    if outcome != OK:
        return _post_in_transaction(db, entry, now, request)  # reads the refusal's detail
    return Replayed(
        idempotency.replayed(
            request, stored_operation, stored_fingerprint, outcome, resource_id, None
        )
    )


def _post_in_transaction(
    db: Database, entry: Entry, now: datetime | None, request: Request | None
) -> PostResult:
    with db.transaction() as conn:
        return journal_for(conn).post(conn, entry, now, request)


_REFUSED_ALONE_MARK = "kassa: refused in a transaction of its own"
"""How `kassa_post_entry_alone` (migration 0017) says the entry was refused."""

_POST_ALONE_SQL = """
    SELECT outcome, resource_id, stored_operation, stored_fingerprint, replayed
    FROM kassa_post_entry_alone(
        %(txn_id)s, %(kind)s, %(memo)s, %(actor)s, %(reason)s, %(reverses_id)s, %(hold_id)s,
        %(metadata)s, %(account_ids)s, %(assets)s, %(posted)s::numeric[],
        %(pending_debits)s::numeric[], %(pending_credits)s::numeric[], %(force)s, %(now)s,
        %(idem_scope)s, %(idem_key)s, %(idem_operation)s, %(idem_fingerprint)s)
"""


def _call_alone(
    db: Database, params: dict[str, Any], sql: str = _POST_ALONE_SQL
) -> tuple[Any, ...]:
    """Run `sql` (a call of `kassa_post_entry_alone` or of `kassa_post_pair` alone) once, in
    autocommit, on the pooled connection's psycopg connection: SQLAlchemy's execute path
    (statement compilation lookup, result metadata, its own transaction) is most of the
    client's time for a call this small. A failure is raised as SQLAlchemy's error, like every
    other statement's, and a connection it broke leaves the pool."""
    pooled = db.engine.raw_connection()
    try:
        driver = pooled.driver_connection
        if not isinstance(driver, psycopg.Connection):
            raise LedgerInvariantBroken("PostgreSQL is reached through psycopg")
        driver.autocommit = True
        try:
            row = driver.execute(sql, params, prepare=True).fetchone()
        except psycopg.Error as failed:
            if driver.broken:
                pooled.invalidate()
            raise DBAPIError.instance(sql, None, failed, psycopg.Error) from failed
        finally:
            if not driver.closed:
                driver.autocommit = False
    finally:
        pooled.close()
    if row is None:
        raise LedgerInvariantBroken("the journal's stored functions return one row")
    return tuple(row)
