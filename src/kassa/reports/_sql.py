"""SQL pieces the reports share: exact sums of amounts and the day a row falls on.

Amounts are arbitrary-size integers (`kassa.db.types.Amount`): NUMERIC on PostgreSQL, decimal
text on SQLite. PostgreSQL sums them exactly with ``sum``. SQLite's own ``sum`` would overflow
64 bits on wei or turn text into floating point, so on SQLite the reports register
``kassa_sum``, an aggregate that adds Python integers exactly; either way the database does the
grouping and hands back one row per group, never the rows themselves.

A row's day is found in SQL too, by a ``CASE`` over the period's day bounds (UTC instants from
`kassa.reports.period`), which is exact across time zones and clock changes on both databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, case, func, literal, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from kassa.db.types import Amount
from kassa.reports.period import Day

__all__ = ["day_index", "exact_sum", "prepare"]


class _ExactSum:
    """SQLite aggregate: the exact integer sum of canonical decimal text (NULLs skipped)."""

    def __init__(self) -> None:
        self.total = 0
        self.seen = False

    def step(self, value: Any) -> None:
        if value is not None:
            self.total += int(value)
            self.seen = True

    def finalize(self) -> str | None:
        return str(self.total) if self.seen else None


def prepare(conn: Connection) -> None:
    """Make ``kassa_sum`` available on this connection (SQLite; nothing to do elsewhere)."""
    if conn.dialect.name != "sqlite":
        return
    raw: Any = conn.connection.driver_connection
    raw.create_aggregate("kassa_sum", 1, _ExactSum)


def exact_sum(conn: Connection, column: ColumnElement[Any]) -> ColumnElement[int]:
    """``sum(column)`` of an amount, exact on both databases, as an int (None when no rows)."""
    if conn.dialect.name == "sqlite":
        return type_coerce(func.kassa_sum(column), Amount())
    return type_coerce(func.sum(column), Amount())


def day_index(column: ColumnElement[Any], days: Sequence[Day]) -> ColumnElement[int]:
    """The index in ``days`` of the day ``column`` (a UTC time inside the period) falls on."""
    if len(days) == 1:
        return literal(0)
    whens = [(column < day.end, index) for index, day in enumerate(days[:-1])]
    return case(*whens, else_=len(days) - 1)
