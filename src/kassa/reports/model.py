"""What every report is: a name, its period, documented columns, and rows of text.

Rows are tuples of strings in the order of ``columns``, so CSV, JSON and HTML all print the same
figures: times in ISO 8601 UTC (``…Z``), dates as ``YYYY-MM-DD`` in the period's zone, amounts
as lossless decimal strings of whole units (`kassa.money.Money.format`) next to a column that
names their asset, or in a column whose name ends in ``_usd``. ``rows`` may be a generator
that reads the database as it is consumed (the statement): it is iterated once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from kassa.money import USD, Money, asset

__all__ = ["Report", "amount_text", "usd_text"]


@dataclass(slots=True)
class Report:
    name: str
    columns: tuple[str, ...]
    rows: Iterable[tuple[str, ...]]
    meta: Mapping[str, str] = field(default_factory=dict)
    """The period and any parameters, printed above the rows."""

    def records(self) -> Iterator[dict[str, str]]:
        for row in self.rows:
            yield dict(zip(self.columns, row, strict=True))


def amount_text(minor: int, code: str) -> str:
    """``minor`` units of the asset ``code`` as a decimal string of whole units."""
    return Money(minor, asset(code)).format()


def usd_text(micro: int) -> str:
    return Money(micro, USD).format()
