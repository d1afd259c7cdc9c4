"""Balances as of an instant: the trial balance of every ledger account at a past moment.

An account's balance at ``T`` is what its postings of journal transactions made at or before
``T`` add up to. Kassa keeps each account's running sums, so the database reads whichever side
of ``T`` holds fewer journal transactions (two index counts decide): the postings up to ``T``,
added up, or the postings after ``T``, taken off the stored sums — one grouped query either
way, over at most half the history (``ix_ledger_transaction_created_at``). Pending holds are
not postings and do not count.

Columns (one row per account that exists at ``T``, by code):

| column | meaning |
|---|---|
| ``account`` | the account's code (``user:<id>:USD``, ``house:revenue:USD``, ``fx:BTC:BTC``, …) |
| ``kind`` | user, revenue, adjustment, fx, wallet, clearing, fee, … |
| ``asset`` | the account's asset |
| ``normal_side`` | ``debit`` or ``credit`` |
| ``debits`` | posted debits up to ``T`` |
| ``credits`` | posted credits up to ``T`` |
| ``balance`` | on the normal side (debits − credits if debit-normal, else the reverse) |

Per asset, the debits equal the credits (the ledger is balanced at every instant); the report's
``totals`` say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, case, func, select

from kassa.ledger.tables import ledger_account, ledger_posting, ledger_transaction
from kassa.reports._sql import exact_sum, prepare
from kassa.reports.model import Report, amount_text
from kassa.reports.period import iso

__all__ = ["COLUMNS", "AccountBalance", "balances_at", "trial_balance"]

COLUMNS = ("account", "kind", "asset", "normal_side", "debits", "credits", "balance")


@dataclass(frozen=True, slots=True)
class AccountBalance:
    account_id: int
    code: str
    kind: str
    asset: str
    normal_side: str
    debits: int
    credits: int

    @property
    def balance(self) -> int:
        """On the normal side."""
        signed = self.debits - self.credits
        return signed if self.normal_side == "debit" else -signed

    def text(self) -> tuple[str, ...]:
        return (
            self.code,
            self.kind,
            self.asset,
            self.normal_side,
            amount_text(self.debits, self.asset),
            amount_text(self.credits, self.asset),
            amount_text(self.balance, self.asset),
        )


def balances_at(
    conn: Connection, at: datetime, *, code_prefix: str | None = None
) -> list[AccountBalance]:
    """Every account created at or before ``at`` with its posted sums at ``at``, by code."""
    prepare(conn)
    count = func.count()
    before = conn.execute(select(count).where(ledger_transaction.c.created_at <= at)).scalar_one()
    after = conn.execute(select(count).where(ledger_transaction.c.created_at > at)).scalar_one()
    # Read the smaller side of the history: the postings up to ``at`` (added up), or the ones
    # after it (taken off the running sums).
    forward = before < after
    chosen = (
        ledger_transaction.c.created_at <= at if forward else ledger_transaction.c.created_at > at
    )
    # ``IN (…)`` lets both databases drive from the transactions' time index and fetch their
    # postings by transaction (SQLite would otherwise walk every posting in account order).
    moved = (
        select(
            ledger_posting.c.account_id.label("account_id"),
            case((ledger_posting.c.amount > 0, ledger_posting.c.amount), else_=None).label("d"),
            case((ledger_posting.c.amount < 0, ledger_posting.c.amount), else_=None).label("c"),
        )
        .where(ledger_posting.c.transaction_id.in_(select(ledger_transaction.c.id).where(chosen)))
        .subquery("moved")
    )
    sums = (
        select(
            moved.c.account_id,
            exact_sum(conn, moved.c.d).label("d"),
            exact_sum(conn, moved.c.c).label("c"),
        )
        .group_by(moved.c.account_id)
        .subquery("sums")
    )
    query = (
        select(
            ledger_account.c.id,
            ledger_account.c.code,
            ledger_account.c.kind,
            ledger_account.c.asset,
            ledger_account.c.normal_side,
            ledger_account.c.debits_posted,
            ledger_account.c.credits_posted,
            sums.c.d,
            sums.c.c,
        )
        .select_from(ledger_account.outerjoin(sums, sums.c.account_id == ledger_account.c.id))
        .where(ledger_account.c.created_at <= at)
        .order_by(ledger_account.c.code)
    )
    if code_prefix is not None:
        query = query.where(ledger_account.c.code.startswith(code_prefix, autoescape=True))
    out: list[AccountBalance] = []
    for row in conn.execute(query):
        moved_debits, moved_credits = int(row.d or 0), -int(row.c or 0)  # c sums negatives
        if forward:
            debits, credits = moved_debits, moved_credits
        else:
            debits = int(row.debits_posted) - moved_debits
            credits = int(row.credits_posted) - moved_credits
        out.append(
            AccountBalance(
                account_id=int(row.id),
                code=str(row.code),
                kind=str(row.kind),
                asset=str(row.asset),
                normal_side=str(row.normal_side),
                debits=debits,
                credits=credits,
            )
        )
    return out


def trial_balance(conn: Connection, at: datetime) -> Report:
    balances = balances_at(conn, at)
    totals: dict[str, list[int]] = {}
    for item in balances:
        pair = totals.setdefault(item.asset, [0, 0])
        pair[0] += item.debits
        pair[1] += item.credits
    meta = {"as_of": iso(at)}
    for code, (debits, credits) in sorted(totals.items()):
        meta[f"total_{code}"] = (
            f"debits {amount_text(debits, code)} credits {amount_text(credits, code)}"
            + ("" if debits == credits else " UNBALANCED")
        )
    return Report("trial-balance", COLUMNS, [b.text() for b in balances], meta)
