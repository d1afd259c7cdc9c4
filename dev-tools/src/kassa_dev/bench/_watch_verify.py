"""Did the watcher record and credit every paid deposit exactly once, and nothing else?

Checked against what the payers saw mined (txid, position, block, address, asset, amount),
never against the watcher's own counters. Money is folded here in Python integers over the
ledger postings, not summed by the database.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, select

from kassa.chains.network import Chain
from kassa.db import Database
from kassa.deposits.model import DepositStatus
from kassa.deposits.tables import deposit, deposit_address
from kassa.ledger.model import AccountKind, TransactionKind
from kassa.ledger.tables import ledger_account, ledger_posting, ledger_transaction
from kassa_dev.bench._watch_model import Check, PaidDeposit

SHOWN = 3
"""Problems quoted per check."""


def verify(db: Database, chain: Chain, paid: Sequence[PaidDeposit]) -> list[Check]:
    with db.engine.connect() as conn:
        rows = {
            (row.txid, row.position): row
            for row in conn.execute(
                select(deposit, deposit_address.c.address)
                .join(deposit_address, deposit_address.c.id == deposit.c.deposit_address_id)
                .where(deposit.c.chain == chain.value)
            )
        }
        return [
            _recorded(rows, paid),
            _nothing_else(rows, paid),
            _credited_once(rows, paid),
            _ledger_transactions(conn, chain, rows, paid),
            *_postings(conn, chain, rows),
        ]


def passed(checks: Sequence[Check]) -> bool:
    return bool(checks) and all(check.ok for check in checks)


def _recorded(rows: dict[tuple[str, int], Row[Any]], paid: Sequence[PaidDeposit]) -> Check:
    problems = []
    for expected in paid:
        row = rows.get((expected.txid, expected.position))
        if row is None:
            problems.append(f"{expected.txid}:{expected.position} missing")
            continue
        found = (
            row.address,
            row.asset,
            int(row.amount),
            row.block_height,
        )
        wanted = (expected.address, expected.asset, expected.amount, expected.height)
        if found != wanted:
            problems.append(f"{expected.txid}:{expected.position} is {found}, paid {wanted}")
    return Check(
        "every paid deposit recorded: its address, asset, amount and block",
        not problems,
        f"{len(paid) - len(problems):,}/{len(paid):,} as paid; {_shown(problems)}",
    )


def _nothing_else(rows: dict[tuple[str, int], Row[Any]], paid: Sequence[PaidDeposit]) -> Check:
    extra = set(rows) - {(p.txid, p.position) for p in paid}
    return Check(
        "no other deposit recorded",
        not extra,
        f"{len(rows):,} deposit rows for {len(paid):,} payments; extra: {_shown(sorted(extra))}",
    )


def _credited_once(rows: dict[tuple[str, int], Row[Any]], paid: Sequence[PaidDeposit]) -> Check:
    problems = []
    for expected in paid:
        row = rows.get((expected.txid, expected.position))
        if row is None:
            continue  # reported by _recorded
        status = row.status
        count = row.credit_count
        usd = row.usd_amount
        if (
            status != DepositStatus.CREDITED.value
            or count != 1
            or usd is None
            or int(usd) <= 0
            or row.credit_transaction_id is None
            or row.reversal_transaction_id is not None
        ):
            problems.append(f"{expected.txid}:{expected.position} {status}, credits {count}")
    return Check(
        "every deposit credited exactly once",
        not problems and len(rows) >= len(paid),
        f"{len(paid) - len(problems):,}/{len(paid):,} credited once; {_shown(problems)}",
    )


def _ledger_transactions(
    conn: Connection,
    chain: Chain,
    rows: dict[tuple[str, int], Row[Any]],
    paid: Sequence[PaidDeposit],
) -> Check:
    ids = set(conn.execute(select(ledger_transaction.c.id).where(*_credits_of(chain))).scalars())
    credited = Counter(row.credit_transaction_id for row in rows.values())
    shared = [str(tx) for tx, n in credited.items() if tx is not None and n > 1]
    ok = len(ids) == len(paid) and set(credited) == ids and not shared
    return Check(
        "one deposit ledger transaction per credit, nothing more",
        ok,
        f"{len(ids):,} {chain} deposit transactions for {len(paid):,} payments; "
        f"shared: {_shown(shared)}",
    )


def _credits_of(chain: Chain) -> tuple[Any, ...]:
    """The ledger transactions crediting this chain's deposits (`records.credit` signs them)."""
    return (
        ledger_transaction.c.kind == TransactionKind.DEPOSIT.value,
        ledger_transaction.c.actor == f"watcher:{chain.value}",
    )


def _postings(conn: Connection, chain: Chain, rows: dict[tuple[str, int], Row[Any]]) -> list[Check]:
    per_asset: dict[str, int] = defaultdict(int)
    per_account: dict[int, int] = defaultdict(int)
    postings = 0
    for account_id, asset_code, amount in conn.execute(
        select(ledger_posting.c.account_id, ledger_posting.c.asset, ledger_posting.c.amount)
    ):
        per_asset[asset_code] += int(amount)
        per_account[int(account_id)] += int(amount)
        postings += 1
    nonzero = {code: total for code, total in per_asset.items() if total}
    # This chain's credits alone, per account.
    by_credit: dict[int, int] = defaultdict(int)
    for account_id, amount in conn.execute(
        select(ledger_posting.c.account_id, ledger_posting.c.amount)
        .join(ledger_transaction, ledger_transaction.c.id == ledger_posting.c.transaction_id)
        .where(*_credits_of(chain))
    ):
        by_credit[int(account_id)] += int(amount)
    users = {
        int(row.id): row
        for row in conn.execute(
            select(ledger_account).where(ledger_account.c.kind == str(AccountKind.USER))
        )
    }
    account_of = {str(row.owner): account_id for account_id, row in users.items()}
    credited: dict[int, int] = defaultdict(int)
    problems = []
    for row in rows.values():
        account_id = account_of.get(str(row.customer_account_id))
        if account_id is None:
            problems.append(f"customer {row.customer_account_id} has no USD account")
        elif row.usd_amount is not None:
            credited[account_id] += int(row.usd_amount)
    touched = {account_id for account_id in users if by_credit.get(account_id)}
    problems += [
        f"account {account_id}: credit postings {by_credit.get(account_id, 0)}, credited {usd}"
        for account_id, usd in credited.items()
        if by_credit.get(account_id, 0) != -usd
    ]
    stale = [
        users[account_id].code
        for account_id in touched
        if (int(users[account_id].debits_posted) - int(users[account_id].credits_posted))
        != per_account[account_id]
    ]
    return [
        Check("postings sum to zero per asset", not nonzero, f"{postings:,} postings; {nonzero}"),
        Check(
            "each paid customer's USD account got exactly its credit, no other account did",
            not problems and touched == set(credited),
            f"{len(credited):,} customers credited, {len(touched):,} user accounts moved by "
            f"{chain} deposit credits; {_shown(problems)}",
        ),
        Check(
            "their stored running sums equal the fold of their postings",
            not stale,
            f"{len(touched):,} accounts; mismatched: {_shown(stale)}",
        ),
    ]


def _shown(problems: Sequence[object]) -> str:
    if not problems:
        return "none"
    more = f" (+{len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    return ", ".join(str(problem) for problem in problems[:SHOWN]) + more
