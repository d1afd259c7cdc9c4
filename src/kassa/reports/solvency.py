"""Liabilities over time: what the house owes its customers at the end of each day of a period
(the sum of every ``user:…:USD`` balance), for the solvency chart of the HTML report.

The opening figure is the trial balance of the customer accounts at the period's start; each
day adds the postings to customer accounts made that day (one grouped query). What the house
holds against it — coverage — comes from the reconciliation runs
(`kassa.reports.reconciliation.history.held_by_day`, a `CoverageSeries`): for the same days, the
USD value of the coins held as the last complete run before each day's end measured it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from kassa.ledger.tables import ledger_account, ledger_posting, ledger_transaction
from kassa.reports._sql import day_index, exact_sum, prepare
from kassa.reports.period import Period
from kassa.reports.trial_balance import balances_at

__all__ = ["CoverageSeries", "DailyFigure", "liabilities_by_day"]


@dataclass(frozen=True, slots=True)
class DailyFigure:
    day: str
    usd: int
    """Micro-USD at the end of the day."""


CoverageSeries = Callable[[Connection, Period], list[DailyFigure | None]]
"""The hook for coverage: USD value of what the house holds at the end of each day of the
period, None for a day nobody measured (`kassa.reports.reconciliation.history.held_by_day`;
`kassa.reports.html.render_report` draws it next to the liabilities)."""


def liabilities_by_day(conn: Connection, period: Period) -> list[DailyFigure]:
    prepare(conn)
    opening = sum(b.balance for b in balances_at(conn, period.start) if b.kind == "user")
    days = period.days()
    inner = (
        select(
            day_index(ledger_transaction.c.created_at, days).label("d"),
            ledger_posting.c.amount.label("amount"),
        )
        .join(ledger_transaction, ledger_transaction.c.id == ledger_posting.c.transaction_id)
        .join(ledger_account, ledger_account.c.id == ledger_posting.c.account_id)
        .where(
            ledger_account.c.kind == "user",
            ledger_transaction.c.created_at >= period.start,
            ledger_transaction.c.created_at < period.end,
        )
        .subquery("moves")
    )
    query = select(inner.c.d, exact_sum(conn, inner.c.amount).label("amount")).group_by(inner.c.d)
    deltas = {int(row.d): -int(row.amount or 0) for row in conn.execute(query)}
    out: list[DailyFigure] = []
    running = opening
    for index, day in enumerate(days):
        running += deltas.get(index, 0)
        out.append(DailyFigure(day.day.isoformat(), running))
    return out
