"""CSV output: a header row of the report's documented columns, then its rows, written as they
come (a streamed report is never collected first). RFC 4180 quoting, ``\\r\\n`` line ends, UTF-8.
The period and parameters are not in the file: its name says them (``activity-2026-11-20.csv``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Protocol

from kassa.reports.model import Report

__all__ = ["TextSink", "csv_chunks", "write_csv"]


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


def csv_chunks(report: Report, rows_per_chunk: int = 1_000) -> Iterator[str]:
    """The CSV text of ``report`` in pieces of about ``rows_per_chunk`` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(report.columns)
    pending = 0
    for row in report.rows:
        writer.writerow(row)
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()
