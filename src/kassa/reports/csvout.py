"""CSV output: a header row of the report's documented columns, then its rows, written as they
come (a streamed report is never collected first). RFC 4180 quoting, ``\\r\\n`` line ends, UTF-8.
The period and parameters are not in the file: its name says them (``activity-2026-11-20.csv``).
"""

from __future__ import annotations

import csv
from typing import Protocol

from kassa.reports.model import Report

__all__ = ["TextSink", "write_csv"]


class TextSink(Protocol):
    def write(self, text: str, /) -> object: ...


def write_csv(report: Report, out: TextSink) -> int:
    """Write ``report`` to ``out``; return the number of data rows."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(report.columns)
    count = 0
    for row in report.rows:
        writer.writerow(row)
        count += 1
    return count
