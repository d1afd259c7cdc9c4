"""Service levels: refund and withdrawal requests against the review due dates their policy set,
and how long they took to approve and to confirm.

A request's due date is the one the policy gave it when it was made (``review_due_at``: the
review service level in business days, weekends and the policy's holidays skipped —
`kassa.policy.calendar.add_business_days`); a request that needed no review, or whose policy
promises no service level, has none. The review is *decided* at the first move out of
``pending_review`` (approved, rejected, or cancelled by the customer). At the report's instant
(the period's end, or now when that is earlier), a request with a due date is:

* ``met`` — decided at or before its due date;
* ``missed`` — decided after it;
* ``open`` — not decided yet, and not due yet;
* ``overdue`` — not decided yet, and past its due date.

Times: ``approve`` runs from the request to its approval (requests approved at once take 0 s),
``confirm`` from the request to its confirmation on chain. Median and 95th percentile by the
nearest-rank rule, in seconds. Requests count in the period they were made in; their durations
are read one row at a time and only the seconds are kept.

Columns (one row per kind, then ``all``): ``kind``, ``requests``, ``with_due_date``, ``met``,
``missed``, ``open``, ``overdue``, ``approved``, ``approve_median_s``, ``approve_p95_s``,
``confirmed``, ``confirm_median_s``, ``confirm_p95_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select

from kassa.payouts.tables import payout_event, payout_request
from kassa.reports.model import Report
from kassa.reports.period import Period, iso

__all__ = ["COLUMNS", "SlaLine", "nearest_rank", "sla", "sla_lines"]

COLUMNS = (
    "kind",
    "requests",
    "with_due_date",
    "met",
    "missed",
    "open",
    "overdue",
    "approved",
    "approve_median_s",
    "approve_p95_s",
    "confirmed",
    "confirm_median_s",
    "confirm_p95_s",
)
_STREAM_ROWS = 2_000


@dataclass(slots=True)
class SlaLine:
    kind: str
    requests: int = 0
    with_due_date: int = 0
    met: int = 0
    missed: int = 0
    open: int = 0
    overdue: int = 0
    approve_seconds: list[float] = field(default_factory=list)
    confirm_seconds: list[float] = field(default_factory=list)

    def text(self) -> tuple[str, ...]:
        def seconds(values: list[float], share: float) -> str:
            found = nearest_rank(values, share)
            return "" if found is None else f"{found:.0f}"

        return (
            self.kind,
            str(self.requests),
            str(self.with_due_date),
            str(self.met),
            str(self.missed),
            str(self.open),
            str(self.overdue),
            str(len(self.approve_seconds)),
            seconds(self.approve_seconds, 0.5),
            seconds(self.approve_seconds, 0.95),
            str(len(self.confirm_seconds)),
            seconds(self.confirm_seconds, 0.5),
            seconds(self.confirm_seconds, 0.95),
        )


def nearest_rank(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``share`` of them at or
    below it (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def sla_lines(conn: Connection, period: Period, *, now: datetime) -> list[SlaLine]:
    at = min(period.end, now)
    approved = (
        select(payout_event.c.request_id, func.min(payout_event.c.at).label("at"))
        .where(payout_event.c.to_status == "approved")
        .group_by(payout_event.c.request_id)
        .subquery("approved_at")
    )
    decided = (
        select(payout_event.c.request_id, func.min(payout_event.c.at).label("at"))
        .where(
            payout_event.c.from_status == "pending_review",
            payout_event.c.to_status != "pending_review",
        )
        .group_by(payout_event.c.request_id)
        .subquery("decided_at")
    )
    query = (
        select(
            payout_request.c.kind,
            payout_request.c.status,
            payout_request.c.created_at,
            payout_request.c.review_due_at,
            payout_request.c.settled_at,
            approved.c.at.label("approved_at"),
            decided.c.at.label("decided_at"),
        )
        .select_from(
            payout_request.outerjoin(
                approved, approved.c.request_id == payout_request.c.id
            ).outerjoin(decided, decided.c.request_id == payout_request.c.id)
        )
        .where(
            payout_request.c.created_at >= period.start, payout_request.c.created_at < period.end
        )
    )
    lines = {kind: SlaLine(kind) for kind in ("refund", "withdrawal")}
    total = SlaLine("all")
    for row in conn.execution_options(yield_per=_STREAM_ROWS).execute(query):
        for line in (lines[row.kind], total):
            _count(line, row, at)
    return [lines["refund"], lines["withdrawal"], total]


def _count(line: SlaLine, row: Row[Any, Any, Any, Any, Any, Any, Any], at: datetime) -> None:
    created: datetime = row.created_at
    due: datetime | None = row.review_due_at
    decided: datetime | None = row.decided_at
    approved: datetime | None = row.approved_at
    settled: datetime | None = row.settled_at
    line.requests += 1
    if decided is not None and decided > at:
        decided = None  # decided after the report's instant: still open then
    if due is not None:
        line.with_due_date += 1
        if decided is not None:
            if decided <= due:
                line.met += 1
            else:
                line.missed += 1
        elif due < at:
            line.overdue += 1
        else:
            line.open += 1
    if approved is not None and approved <= at:
        line.approve_seconds.append((approved - created).total_seconds())
    if row.status == "confirmed" and settled is not None and settled <= at:
        line.confirm_seconds.append((settled - created).total_seconds())


def sla(conn: Connection, period: Period, *, now: datetime) -> Report:
    meta = {**period.describe(), "as_of": iso(min(period.end, now))}
    return Report("sla", COLUMNS, [line.text() for line in sla_lines(conn, period, now=now)], meta)
