"""GET /v1/reports/…: the finance reports as JSON, for keys with the ``reports:read`` scope
(admin keys have it too). A key bound to one customer account reads no reports.

Every answer has the same shape: ``report`` (its name), ``meta`` (the period — label, time
zone, UTC bounds — and parameters), ``columns`` (the documented, stable column names) and
``rows`` (objects with those keys; every value a string: ISO times, decimal amounts next to
their asset). The columns and their meaning are in docs/reports.md; the same rows are what
``kassa reports … --format csv`` writes.

Periods: ``period=2026-11-20`` (a day), ``2026-11`` (a month) or ``2026-11-01..2026-11-15``
(both days included), with ``tz=`` an IANA time zone (default UTC); a bad one is
``422 invalid_period``.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from kassa.api.auth import ReportsReader, refuse_if_bound
from kassa.api.context import Ctx
from kassa.api.openapi import problems_for
from kassa.clock import parse_time
from kassa.reports.activity import activity
from kassa.reports.fees import fees
from kassa.reports.fx import fx
from kassa.reports.model import Report
from kassa.reports.period import Period, parse_period
from kassa.reports.sla import sla
from kassa.reports.statement import statement
from kassa.reports.trial_balance import trial_balance

router = APIRouter(prefix="/v1/reports", tags=["reports"])

PeriodQuery = Query(
    description="A day (2026-11-20), a month (2026-11) or a range (2026-11-01..2026-11-15)",
    examples=["2026-11"],
    max_length=32,
)
ZoneQuery = Query("UTC", description="IANA time zone of the period's days", max_length=64)


class ReportOut(BaseModel):
    report: str
    meta: dict[str, str] = Field(description="Period and parameters")
    columns: list[str] = Field(description="The documented columns, in order")
    rows: list[dict[str, str]] = Field(description="One object per row, every value a string")

    @classmethod
    def of(cls, report: Report) -> ReportOut:
        return cls(
            report=report.name,
            meta=dict(report.meta),
            columns=list(report.columns),
            rows=list(report.records()),
        )


def _period(text: str, tz: str) -> Period:
    return parse_period(text, tz)


def _refuse_bound(caller: ReportsReader) -> None:
    refuse_if_bound(caller, "read finance reports")


@router.get(
    "/activity",
    description="Deposits, usage, activations, refunds and withdrawals per day of the period.",
    responses=problems_for("invalid_period"),
)
def activity_report(
    ctx: Ctx, caller: ReportsReader, period: str = PeriodQuery, tz: str = ZoneQuery
) -> ReportOut:
    _refuse_bound(caller)
    chosen = _period(period, tz)
    with ctx.database.transaction() as conn:
        return ReportOut.of(activity(conn, chosen))


@router.get(
    "/fees",
    description="Service fees and network fees charged against paid, per chain, for the "
    "payouts settled in the period.",
    responses=problems_for("invalid_period"),
)
def fees_report(
    ctx: Ctx, caller: ReportsReader, period: str = PeriodQuery, tz: str = ZoneQuery
) -> ReportOut:
    _refuse_bound(caller)
    chosen = _period(period, tz)
    with ctx.database.transaction() as conn:
        return ReportOut.of(fees(conn, chosen))


@router.get(
    "/fx",
    description="Spread revenue, the realised FX result of payouts and the unrealised result "
    "of the coins held at the period's end.",
    responses=problems_for("invalid_period"),
)
def fx_report(
    ctx: Ctx, caller: ReportsReader, period: str = PeriodQuery, tz: str = ZoneQuery
) -> ReportOut:
    _refuse_bound(caller)
    chosen = _period(period, tz)
    with ctx.database.transaction() as conn:
        return ReportOut.of(fx(conn, chosen, now=ctx.clock.now(conn)))


@router.get(
    "/sla",
    description="Refund and withdrawal requests of the period against their review due "
    "dates (met, missed, open, overdue) and the times to approve and to confirm.",
    responses=problems_for("invalid_period"),
)
def sla_report(
    ctx: Ctx, caller: ReportsReader, period: str = PeriodQuery, tz: str = ZoneQuery
) -> ReportOut:
    _refuse_bound(caller)
    chosen = _period(period, tz)
    with ctx.database.transaction() as conn:
        return ReportOut.of(sla(conn, chosen, now=ctx.clock.now(conn)))


@router.get(
    "/statement",
    description="One customer's statement: opening balance, every movement with its memo, "
    "closing balance.",
    responses=problems_for("invalid_period", "account_not_found"),
)
def statement_report(
    ctx: Ctx,
    caller: ReportsReader,
    external_id: str = Query(description="The customer's external id", max_length=128),
    period: str = PeriodQuery,
    tz: str = ZoneQuery,
) -> ReportOut:
    _refuse_bound(caller)
    chosen = _period(period, tz)
    with ctx.database.transaction() as conn:
        return ReportOut.of(statement(conn, external_id, chosen))


@router.get(
    "/trial-balance",
    description="Every ledger account's debits, credits and balance at a past instant.",
    responses=problems_for("invalid_time"),
)
def trial_balance_report(
    ctx: Ctx,
    caller: ReportsReader,
    at: str | None = Query(
        None, description="ISO 8601 instant with a zone (default: now)", max_length=64
    ),
) -> ReportOut:
    _refuse_bound(caller)
    instant: datetime | None = None if at is None else parse_time(at)
    with ctx.database.transaction() as conn:
        return ReportOut.of(trial_balance(conn, instant or ctx.clock.now(conn)))
