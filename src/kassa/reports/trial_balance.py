"""Balances as of an instant: the trial balance of every ledger account at a past moment.

An account's balance at ``T`` is what its postings of journal transactions made at or before
``T`` add up to. Kassa keeps each account's running sums, so the database computes it as the
stored sums minus the postings made after ``T``: one grouped query over the recent postings
(``ix_ledger_transaction_created_at``), however long the history before ``T`` is. Pending holds
are not postings and do not count.

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

from sqlalchemy import Connection, and_, case, select

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
    later = (
        select(
            ledger_posting.c.account_id.label("account_id"),
            case((ledger_posting.c.amount > 0, ledger_posting.c.amount), else_=None).label("d"),
            case((ledger_posting.c.amount < 0, ledger_posting.c.amount), else_=None).label("c"),
        )
        .join(ledger_transaction, ledger_transaction.c.id == ledger_posting.c.transaction_id)
        .where(ledger_transaction.c.created_at > at)
        .subquery("later")
    )
    after = (
        select(
            later.c.account_id,
            exact_sum(conn, later.c.d).label("d"),
            exact_sum(conn, later.c.c).label("c"),
        )
        .group_by(later.c.account_id)
        .subquery("after")
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
            after.c.d,
            after.c.c,
        )
        .select_from(ledger_account.outerjoin(after, after.c.account_id == ledger_account.c.id))
        .where(ledger_account.c.created_at <= at)
        .order_by(ledger_account.c.code)
    )
    if code_prefix is not None:
        query = query.where(and_(ledger_account.c.code.startswith(code_prefix, autoescape=True)))
    out: list[AccountBalance] = []
    for row in conn.execute(query):
        out.append(
            AccountBalance(
                account_id=int(row.id),
                code=str(row.code),
                kind=str(row.kind),
                asset=str(row.asset),
                normal_side=str(row.normal_side),
                debits=int(row.debits_posted) - int(row.d or 0),
                credits=int(row.credits_posted) + int(row.c or 0),  # c is negative
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
