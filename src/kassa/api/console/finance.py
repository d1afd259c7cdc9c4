"""Rates, reconciliation breaks, webhooks and the finance reports.

- Rates: each symbol's current rate with every quote behind it, accepted or rejected and why
  (`kassa.pricing.service.PricingService.current`, as ``GET /v1/rates``).
- Reconciliation: the latest run (coverage, notes) and the breaks with their lifecycle (new,
  persisting, resolved; first and last seen), open ones unless asked for all.
- Webhooks: the endpoints, the delivery log (by endpoint and status, a page at a time) with
  each delivery's attempts, and redelivery of an event (``payouts:approve``), as
  ``kassa.webhooks.deliveries.redeliver`` records it.
- Reports: a period's activity per day drawn with the vendored Chart.js (served from
  ``/console/static``; the figures travel in a JSON data block, never in an inline script),
  and each report as a CSV download.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from kassa.api.console.web import (
    PREFIX,
    Decider,
    Operator,
    Refused,
    checked_form,
    render,
    see_other,
)
from kassa.api.context import Ctx
from kassa.errors import KassaError
from kassa.pricing.errors import NoRate
from kassa.pricing.model import Symbol
from kassa.reports.activity import activity
from kassa.reports.csvout import write_csv
from kassa.reports.fees import fees
from kassa.reports.fx import fx
from kassa.reports.model import Report, usd_text
from kassa.reports.period import Period, parse_period
from kassa.reports.reconciliation import store as reconciliation
from kassa.reports.reconciliation.history import held_by_day
from kassa.reports.sla import sla
from kassa.reports.solvency import liabilities_by_day
from kassa.reports.trial_balance import trial_balance
from kassa.webhooks import deliveries, endpoints
from kassa.webhooks.deliveries import DeliveryStatus

router = APIRouter(prefix=PREFIX, include_in_schema=False)

DELIVERIES_PAGE = 50


# --------------------------------------------------------------------------- rates


@router.get("/rates")
def rates_page(request: Request, session: Operator, ctx: Ctx) -> HTMLResponse:
    found: list[Any] = []
    unavailable: list[tuple[str, str]] = []
    with ctx.database.transaction() as conn:
        now = ctx.clock.now(conn)
        for symbol in Symbol:
            try:
                found.append(ctx.pricing.current(conn, symbol, now))
            except NoRate as error:
                unavailable.append((symbol.value, error.detail))
    return render(
        request, "rates.html", session, section="rates", rates=found, unavailable=unavailable
    )


# --------------------------------------------------------------------------- reconciliation


@router.get("/reconciliation")
def reconciliation_page(
    request: Request, session: Operator, ctx: Ctx, all: bool = False
) -> HTMLResponse:
    with ctx.database.transaction() as conn:
        run = reconciliation.latest_run(conn)
        breaks = reconciliation.open_breaks(conn, include_resolved=all)
    return render(
        request,
        "reconciliation.html",
        session,
        section="reconciliation",
        run=run,
        breaks=breaks,
        everything=all,
    )


# --------------------------------------------------------------------------- webhooks


@router.get("/webhooks")
def webhooks_page(
    request: Request,
    session: Operator,
    ctx: Ctx,
    endpoint: Annotated[str, Query(max_length=40)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    before: Annotated[int | None, Query(ge=1)] = None,
    delivery: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    wanted = None
    if status:
        try:
            wanted = DeliveryStatus(status)
        except ValueError:
            raise Refused(422, "Unknown state", f"{status!r} is not a delivery state") from None
    endpoint_id = None
    if endpoint:
        try:
            endpoint_id = uuid.UUID(endpoint)
        except ValueError:
            raise Refused(422, "Unknown endpoint", f"{endpoint!r} is not an endpoint id") from None
    with ctx.database.transaction() as conn:
        listed = endpoints.listing(conn)
        log = deliveries.listing(
            conn, endpoint_id=endpoint_id, status=wanted, before=before, limit=DELIVERIES_PAGE
        )
        opened = None
        if delivery is not None:
            try:
                opened = deliveries.get(conn, delivery)
            except KassaError as error:
                raise Refused(404, "Not found", error.detail) from None
    return render(
        request,
        "webhooks.html",
        session,
        section="webhooks",
        endpoints=listed,
        log=log,
        more=len(log) == DELIVERIES_PAGE,
        endpoint=endpoint,
        state=status,
        states=[s.value for s in DeliveryStatus],
        opened=opened,
    )


@router.post("/webhooks/redeliver")
async def redeliver(request: Request, session: Decider, ctx: Ctx) -> Response:
    form = await checked_form(request, session)
    event_id = form.get("event_id", "").strip()[:64]
    target = form.get("endpoint_id", "").strip()

    def work(conn: Connection) -> int:
        endpoint_id = uuid.UUID(target) if target else None
        return len(
            deliveries.redeliver(conn, event_id, now=ctx.clock.now(conn), endpoint_id=endpoint_id)
        )

    def run() -> int:
        with ctx.database.transaction() as conn:
            return work(conn)

    try:
        await run_in_threadpool(run)
    except (KassaError, ValueError) as error:
        detail = error.detail if isinstance(error, KassaError) else "not an endpoint id"
        raise Refused(422, "Not redelivered", f"{event_id}: {detail}") from None
    return see_other(f"{PREFIX}/webhooks?status=pending")


# --------------------------------------------------------------------------- reports

SOLVENCY_COLUMNS = ("day", "owed_usd", "held_usd")


def solvency(conn: Connection, period: Period) -> Report:
    """What the house owed its customers at each day's end and what it held as the last
    complete reconciliation before then measured it (empty where none had run): the figures of
    `kassa reports html`'s solvency chart."""
    owed = liabilities_by_day(conn, period)
    held = held_by_day(conn, period)
    rows = [
        (o.day, usd_text(o.usd), "" if h is None else usd_text(h.usd))
        for o, h in zip(owed, held, strict=True)
    ]
    return Report("solvency", SOLVENCY_COLUMNS, rows, period.describe())


REPORTS: dict[str, Callable[..., Report]] = {
    "activity": lambda conn, period, now: activity(conn, period),
    "fees": lambda conn, period, now: fees(conn, period),
    "fx": lambda conn, period, now: fx(conn, period, now=now),
    "sla": lambda conn, period, now: sla(conn, period, now=now),
    "solvency": lambda conn, period, now: solvency(conn, period),
    # At the period's end, as `kassa reports trial-balance --at` (now, for a period not over).
    "trial-balance": lambda conn, period, now: trial_balance(conn, min(period.end, now)),
}


def _period(text: str, zone: str) -> Period:
    try:
        return parse_period(text, zone)
    except KassaError as error:
        raise Refused(422, "Invalid period", error.detail) from None


def _series(row: dict[str, str]) -> str | None:
    """The chart series an activity row counts in (as the HTML report draws them): deposits
    and usage, fulfilled activations, confirmed refunds and withdrawals."""
    category, item = row.get("category", ""), row.get("item", "")
    if category in ("deposit", "usage"):
        return category
    if category == "activation" and item == "fulfilled":
        return category
    if category in ("refund", "withdrawal") and item == "confirmed":
        return category
    return None


def _daily(rows: list[dict[str, str]], days: list[str]) -> dict[str, list[str]]:
    """USD per day and series of the activity report, as exact decimal strings (the script
    turns them into numbers for drawing only)."""
    series: dict[str, list[Decimal]] = {}
    for row in rows:
        name = _series(row)
        if name is None or row.get("day") not in days or not row.get("usd"):
            continue
        values = series.setdefault(name, [Decimal(0)] * len(days))
        values[days.index(row["day"])] += Decimal(row["usd"].split()[0])
    return {name: [str(v) for v in values] for name, values in series.items()}


@router.get("/reports")
def reports_page(
    request: Request,
    session: Operator,
    ctx: Ctx,
    period: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    with ctx.database.transaction() as conn:
        now = ctx.clock.now(conn)
        text = period or now.astimezone(session.zone).strftime("%Y-%m")
        chosen = _period(text, session.time_zone)
        # Report rows may stream from the database: read inside the transaction.
        tables = {
            name: (report.columns, list(report.records()))
            for name, report in ((n, make(conn, chosen, now)) for n, make in REPORTS.items())
        }
    days = [day.day.isoformat() for day in chosen.days()]
    return render(
        request,
        "reports.html",
        session,
        section="reports",
        period=text,
        label=f"{chosen.label} in {chosen.zone.key}",
        tables=tables,
        chart={"days": days, "series": _daily(tables["activity"][1], days)},
        solvency_chart={
            "days": [row["day"] for row in tables["solvency"][1]],
            "owed": [row["owed_usd"] for row in tables["solvency"][1]],
            "held": [row["held_usd"] or None for row in tables["solvency"][1]],
        },
    )


@router.get("/reports/{name}.csv")
def report_csv(
    name: str, session: Operator, ctx: Ctx, period: Annotated[str, Query(max_length=32)]
) -> Response:
    make = REPORTS.get(name)
    if make is None:
        raise Refused(404, "Not found", f"No report {name!r}.")
    chosen = _period(period, session.time_zone)
    out = io.StringIO()
    with ctx.database.transaction() as conn:
        write_csv(make(conn, chosen, ctx.clock.now(conn)), out)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{chosen.label}.csv"'},
    )
