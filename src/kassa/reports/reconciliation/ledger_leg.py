"""Leg 1: the ledger on its own.

- every asset's postings sum to zero, and every transaction balances per asset;
- every account's stored posted sums equal the fold of its postings, and its pending sums its
  open holds;
- no customer balance below zero unless the customer account is frozen;
- the payout clearing account at zero (a payout's capture and settlement are one transaction,
  so nothing is ever left in it between requests);
- every idempotency key has an outcome (`kassa.ledger.idempotency.outcomeless`, what
  `kassa doctor` checks too).

Postings are streamed ordered by transaction, so a transaction's balance is folded as it passes
and only the per-account sums (one entry per account) are kept. Sums are taken in Python:
SQLite stores amounts as text.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import Connection, select

from kassa.accounts.tables import customer_account
from kassa.ledger import idempotency
from kassa.ledger.tables import ledger_account, ledger_hold, ledger_posting
from kassa.reports.reconciliation.model import Break, BreakClass, Findings, Leg, Progress, quiet

_BATCH = 10_000
CLEARING_CODE = "clearing:payouts:USD"


def check(conn: Connection, found: Findings, progress: Progress = quiet) -> None:
    progress("ledger: postings, stored sums, holds, idempotency keys")
    per_asset: dict[str, int] = defaultdict(int)
    debits: dict[int, int] = defaultdict(int)
    credits: dict[int, int] = defaultdict(int)
    current: uuid.UUID | None = None
    open_sums: dict[str, int] = defaultdict(int)

    def close_transaction() -> None:
        for code, total in sorted(open_sums.items()):
            if total:
                found.add(
                    Break(
                        BreakClass.TRANSACTION_UNBALANCED,
                        str(current),
                        f"transaction {current} does not balance in {code} (off by {total})",
                        asset=code,
                        expected=0,
                        actual=total,
                    )
                )
        open_sums.clear()

    rows = conn.execution_options(yield_per=_BATCH).execute(
        select(
            ledger_posting.c.transaction_id,
            ledger_posting.c.account_id,
            ledger_posting.c.asset,
            ledger_posting.c.amount,
        ).order_by(ledger_posting.c.transaction_id)
    )
    for read, row in enumerate(rows, 1):
        if row.transaction_id != current:
            close_transaction()
            current = row.transaction_id
        amount = int(row.amount)
        per_asset[row.asset] += amount
        open_sums[row.asset] += amount
        if amount > 0:
            debits[row.account_id] += amount
        else:
            credits[row.account_id] -= amount
        if read % (_BATCH * 10) == 0:
            progress(f"ledger: {read:,} postings read")
    close_transaction()
    for code, total in sorted(per_asset.items()):
        if total:
            found.add(
                Break(
                    BreakClass.ASSET_UNBALANCED,
                    code,
                    f"the postings in {code} sum to {total}, not zero",
                    asset=code,
                    expected=0,
                    actual=total,
                )
            )

    held_debits: dict[int, int] = defaultdict(int)
    held_credits: dict[int, int] = defaultdict(int)
    open_holds = select(
        ledger_hold.c.debit_account_id, ledger_hold.c.credit_account_id, ledger_hold.c.amount
    ).where(ledger_hold.c.status == "pending")
    for hold in conn.execution_options(yield_per=_BATCH).execute(open_holds):
        held_debits[hold.debit_account_id] += int(hold.amount)
        held_credits[hold.credit_account_id] += int(hold.amount)

    frozen = {
        row.ledger_account_id
        for row in conn.execute(
            select(customer_account.c.ledger_account_id).where(
                customer_account.c.status == "frozen"
            )
        )
    }
    accounts = select(
        ledger_account.c.id,
        ledger_account.c.code,
        ledger_account.c.asset,
        ledger_account.c.kind,
        ledger_account.c.debits_posted,
        ledger_account.c.credits_posted,
        ledger_account.c.debits_pending,
        ledger_account.c.credits_pending,
    ).order_by(ledger_account.c.id)
    for account in conn.execution_options(yield_per=_BATCH).execute(accounts):
        stored_net = int(account.debits_posted) - int(account.credits_posted)
        folded_net = debits[account.id] - credits[account.id]
        if (int(account.debits_posted), int(account.credits_posted)) != (
            debits[account.id],
            credits[account.id],
        ):
            found.add(
                Break(
                    BreakClass.POSTED_SUMS_MISMATCH,
                    account.code,
                    f"account {account.code} stores debits/credits "
                    f"{int(account.debits_posted)}/{int(account.credits_posted)}, its postings "
                    f"add up to {debits[account.id]}/{credits[account.id]}",
                    asset=account.asset,
                    expected=folded_net,
                    actual=stored_net,
                )
            )
        stored_pending = (int(account.debits_pending), int(account.credits_pending))
        held = (held_debits[account.id], held_credits[account.id])
        if stored_pending != held:
            found.add(
                Break(
                    BreakClass.PENDING_SUMS_MISMATCH,
                    account.code,
                    f"account {account.code} stores pending debits/credits "
                    f"{stored_pending[0]}/{stored_pending[1]}, its open holds add up to "
                    f"{held[0]}/{held[1]}",
                    asset=account.asset,
                    expected=held[0] - held[1],
                    actual=stored_pending[0] - stored_pending[1],
                )
            )
        if account.kind == "user" and account.id not in frozen and stored_net > 0:
            found.add(
                Break(
                    BreakClass.NEGATIVE_BALANCE,
                    account.code,
                    f"customer balance {account.code} is {-stored_net} (below zero) and the "
                    "account is not frozen",
                    asset=account.asset,
                    expected=0,
                    actual=-stored_net,
                )
            )
        if account.code == CLEARING_CODE and stored_net:
            found.add(
                Break(
                    BreakClass.CLEARING_NOT_ZERO,
                    account.code,
                    f"{account.code} holds {-stored_net}: a payout's capture was not cleared by "
                    "its settlement",
                    asset=account.asset,
                    expected=0,
                    actual=-stored_net,
                )
            )

    for scope, key, operation, created in idempotency.outcomeless(conn, 1000):
        found.add(
            Break(
                BreakClass.KEY_WITHOUT_OUTCOME,
                f"{scope}:{key}",
                f"idempotency key {key!r} of {scope} ({operation}, claimed "
                f"{created:%Y-%m-%d %H:%M:%S}Z) has no outcome: its retries cannot be answered",
            )
        )
    found.checked.add((Leg.LEDGER, None))
