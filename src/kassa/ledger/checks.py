"""Integrity checks over the books, for `kassa doctor` (and the tests' end-of-run checks).

Each check reads committed rows only and returns what it found wrong, in words an operator can
act on; an empty list means the rule holds:

- `outcomeless_keys` — every committed idempotency record has an outcome (a record is claimed
  and completed in one transaction; one without an outcome is a request whose retries fail);
- `books` — the postings of every asset sum to zero, every transaction balances per asset, and
  every account's stored posted sums equal the fold of its postings;
- `pending` — every account's stored pending sums equal its open holds.

They scan whole tables, streaming rows (`yield_per`), and report progress through `progress`.
Sums are taken in Python: on SQLite amounts are stored as text.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from kassa.ledger import idempotency
from kassa.ledger.tables import ledger_account, ledger_hold, ledger_posting

Progress = Callable[[str, int], None]
"""Told the check's name and how many rows it has read so far."""

_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    detail: str


def _quiet(_name: str, _rows: int) -> None:
    return None


def outcomeless_keys(conn: Connection, *, limit: int = 100) -> list[Finding]:
    return [
        Finding(
            "idempotency",
            f"key {key!r} of {scope} ({operation}, claimed {created:%Y-%m-%d %H:%M:%S}Z) has "
            "no outcome: its retries cannot be answered",
        )
        for scope, key, operation, created in idempotency.outcomeless(conn, limit)
    ]


def books(conn: Connection, progress: Progress = _quiet) -> list[Finding]:
    per_asset: dict[str, int] = defaultdict(int)
    per_transaction: dict[tuple[uuid.UUID, str], int] = defaultdict(int)
    debits: dict[int, int] = defaultdict(int)
    credits: dict[int, int] = defaultdict(int)
    rows = conn.execution_options(yield_per=_BATCH).execute(
        select(
            ledger_posting.c.transaction_id,
            ledger_posting.c.account_id,
            ledger_posting.c.asset,
            ledger_posting.c.amount,
        )
    )
    for read, row in enumerate(rows, 1):
        amount = int(row.amount)
        per_asset[row.asset] += amount
        per_transaction[(row.transaction_id, row.asset)] += amount
        if amount > 0:
            debits[row.account_id] += amount
        else:
            credits[row.account_id] -= amount
        if read % _BATCH == 0:
            progress("books", read)
    found = [
        Finding("books", f"the postings in {asset} sum to {total}, not zero")
        for asset, total in sorted(per_asset.items())
        if total
    ]
    found += [
        Finding("books", f"transaction {txn} does not balance in {asset} (off by {total})")
        for (txn, asset), total in sorted(per_transaction.items(), key=str)
        if total
    ]
    accounts = select(
        ledger_account.c.id,
        ledger_account.c.code,
        ledger_account.c.debits_posted,
        ledger_account.c.credits_posted,
    )
    for account in conn.execute(accounts):
        stored = (int(account.debits_posted), int(account.credits_posted))
        folded = (debits[account.id], credits[account.id])
        if stored != folded:
            found.append(
                Finding(
                    "books",
                    f"account {account.code} stores debits/credits {stored}, its postings "
                    f"add up to {folded}",
                )
            )
    return found


def pending(conn: Connection) -> list[Finding]:
    debits: dict[int, int] = defaultdict(int)
    credits: dict[int, int] = defaultdict(int)
    open_holds = select(
        ledger_hold.c.debit_account_id, ledger_hold.c.credit_account_id, ledger_hold.c.amount
    ).where(ledger_hold.c.status == "pending")
    for hold in conn.execution_options(yield_per=_BATCH).execute(open_holds):
        debits[hold.debit_account_id] += int(hold.amount)
        credits[hold.credit_account_id] += int(hold.amount)
    found = []
    accounts = select(
        ledger_account.c.id,
        ledger_account.c.code,
        ledger_account.c.debits_pending,
        ledger_account.c.credits_pending,
    )
    for account in conn.execute(accounts):
        stored = (int(account.debits_pending), int(account.credits_pending))
        held = (debits[account.id], credits[account.id])
        if stored != held:
            found.append(
                Finding(
                    "pending",
                    f"account {account.code} stores pending debits/credits {stored}, its open "
                    f"holds add up to {held}",
                )
            )
    return found


def everything(conn: Connection, progress: Progress = _quiet) -> list[Finding]:
    return [*outcomeless_keys(conn), *books(conn, progress), *pending(conn)]
