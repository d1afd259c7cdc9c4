"""Activity: what happened each day of a period — deposits, usage, activations, refunds and
withdrawals — counted and summed by the database (one grouped query per kind of record).

Columns (one row per day, category, item and asset that had anything):

| column | meaning |
|---|---|
| ``day`` | the calendar day in the period's time zone (``YYYY-MM-DD``) |
| ``category`` | ``deposit``, ``usage``, ``activation``, ``refund`` or ``withdrawal`` |
| ``item`` | ``credited``; ``charged``; ``fulfilled``/``expired``/``cancelled``; a status |
| ``asset`` | the asset of ``amount`` |
| ``count`` | deposits, usage events, activations or requests |
| ``amount`` | coins received; USD charged or released; coins sent (``net_native``) |
| ``usd`` | USD credited at the locked rate; as ``amount``; gross USD of the request |

Which day a record belongs to: a deposit by its payment time (``first_seen_at``, the time its
rate was locked; only deposits credited now count), a usage batch by when it was charged, an
activation by when it was resolved, a refund or withdrawal by when it was requested.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, String, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from kassa.deposits.tables import deposit
from kassa.payouts.tables import payout_request
from kassa.reports._sql import day_index, exact_sum, prepare
from kassa.reports.model import Report, amount_text, usd_text
from kassa.reports.period import Day, Period
from kassa.spending.tables import activation, usage_batch

__all__ = ["COLUMNS", "ActivityRow", "activity", "activity_rows"]

COLUMNS = ("day", "category", "item", "asset", "count", "amount", "usd")
CATEGORY_ORDER = ("deposit", "usage", "activation", "refund", "withdrawal")


@dataclass(frozen=True, slots=True)
class ActivityRow:
    day: str
    category: str
    item: str
    asset: str
    count: int
    amount: int
    """Minor units of ``asset``."""
    usd: int
    """Micro-USD."""

    def text(self) -> tuple[str, ...]:
        return (
            self.day,
            self.category,
            self.item,
            self.asset,
            str(self.count),
            amount_text(self.amount, self.asset),
            usd_text(self.usd),
        )


def activity(conn: Connection, period: Period) -> Report:
    rows = activity_rows(conn, period)
    return Report("activity", COLUMNS, [row.text() for row in rows], period.describe())


def activity_rows(conn: Connection, period: Period) -> list[ActivityRow]:
    """Every non-empty (day, category, item, asset) of the period, in day and category order."""
    prepare(conn)
    days = period.days()
    found: list[ActivityRow] = []
    found += _grouped(
        conn,
        days,
        "deposit",
        deposit.c.first_seen_at,
        item=None,
        asset_col=deposit.c.asset,
        count_of=None,
        amount=deposit.c.amount,
        usd=deposit.c.usd_amount,
        where=[deposit.c.status == "credited"],
        fixed_item="credited",
    )
    found += _grouped(
        conn,
        days,
        "usage",
        usage_batch.c.created_at,
        item=None,
        asset_col=None,
        count_of=usage_batch.c.charged_events,
        amount=usage_batch.c.charged_amount,
        usd=usage_batch.c.charged_amount,
        where=[usage_batch.c.charged_events > 0],
        fixed_item="charged",
    )
    found += _grouped(
        conn,
        days,
        "activation",
        activation.c.resolved_at,
        item=activation.c.status,
        asset_col=None,
        count_of=None,
        amount=activation.c.price,
        usd=activation.c.price,
        where=[activation.c.status.in_(("fulfilled", "expired", "cancelled"))],
    )
    for kind in ("refund", "withdrawal"):
        found += _grouped(
            conn,
            days,
            kind,
            payout_request.c.created_at,
            item=payout_request.c.status,
            asset_col=payout_request.c.asset,
            count_of=None,
            amount=payout_request.c.net_native,
            usd=payout_request.c.gross_usd,
            where=[payout_request.c.kind == kind],
        )
    found.sort(key=lambda r: (r.day, CATEGORY_ORDER.index(r.category), r.item, r.asset))
    return found


def _grouped(
    conn: Connection,
    days: Sequence[Day],
    category: str,
    at: ColumnElement[Any],
    *,
    item: ColumnElement[Any] | None,
    asset_col: ColumnElement[Any] | None,
    count_of: ColumnElement[Any] | None,
    amount: ColumnElement[Any],
    usd: ColumnElement[Any],
    where: Sequence[ColumnElement[bool]],
    fixed_item: str = "",
) -> Iterator[ActivityRow]:
    """One grouped query: rows of the period bucketed by day (in a subquery, so the day's
    ``CASE`` is written once), then item and asset. ``count_of`` None counts rows; a column is
    summed instead (a usage batch carries its number of events)."""
    inner_cols: list[Any] = [day_index(at, days).label("d")]
    inner_cols.append((item if item is not None else _text(fixed_item)).label("item"))
    inner_cols.append((asset_col if asset_col is not None else _text("USD")).label("asset"))
    inner_cols.append((count_of if count_of is not None else literal(1)).label("n_src"))
    inner_cols += [amount.label("amount"), usd.label("usd")]
    start, end = days[0].start, days[-1].end
    inner = (
        select(*inner_cols)
        .where(at.is_not(None), at >= start, at < end, *where)
        .subquery("bucketed")
    )
    counted = func.sum(inner.c.n_src).label("n")
    query: Select[Any] = (
        select(
            inner.c.d,
            inner.c.item,
            inner.c.asset,
            counted,
            exact_sum(conn, inner.c.amount).label("amount"),
            exact_sum(conn, inner.c.usd).label("usd"),
        )
        .group_by(inner.c.d, inner.c.item, inner.c.asset)
        .order_by(inner.c.d, inner.c.item, inner.c.asset)
    )
    for row in conn.execute(query):
        yield ActivityRow(
            day=days[int(row.d)].day.isoformat(),
            category=category,
            item=str(row.item),
            asset=str(row.asset),
            count=int(row.n or 0),
            amount=int(row.amount or 0),
            usd=int(row.usd or 0),
        )


def _text(value: str) -> ColumnElement[str]:
    return literal(value, String())
