"""`kassa reports …`: the finance reports of a period, as CSV (the default), JSON or a table,
to stdout or a file; `kassa reports html` writes the self-contained HTML report with charts;
`kassa reports daily` writes a day's activity files as the worker does.

Periods: ``--period 2026-11-20`` (a day), ``2026-11`` (a month) or ``2026-11-01..2026-11-15``;
``--tz`` an IANA zone (default ``[reports] time_zone``). Progress and timings go to stderr,
the report to stdout (or ``--output``).
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from kassa.cli._common import fail, migrated_database, say

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy import Connection

    from kassa.config import Settings
    from kassa.reports.model import Report
    from kassa.reports.period import Period

app = typer.Typer(
    rich_markup_mode=None,
    help="Finance reports: activity, fees, fx, sla, statement, trial-balance, html, daily.",
    no_args_is_help=True,
)

PeriodOption = Annotated[
    str, typer.Option("--period", help="2026-11-20, 2026-11 or 2026-11-01..2026-11-15")
]
ZoneOption = Annotated[
    str | None, typer.Option("--tz", help="IANA time zone (default: [reports] time_zone)")
]
FormatOption = Annotated[str, typer.Option("--format", help="csv, json or table")]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write here instead of stdout")
]


@contextmanager
def _out(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        yield handle


def _period(settings: Settings, text: str, tz: str | None) -> Period:
    from kassa.errors import KassaError
    from kassa.reports.period import parse_period

    try:
        return parse_period(text, tz or settings.reports.time_zone)
    except KassaError as error:
        fail(error.detail, 2)


def _emit(report: Report, fmt: str, output: Path | None) -> int:
    from kassa.reports.csvout import write_csv

    count = 0
    with _out(output) as out:
        if fmt == "csv":
            count = write_csv(report, out)
        elif fmt == "json":
            rows = list(report.records())
            count = len(rows)
            document = {
                "report": report.name,
                "meta": dict(report.meta),
                "columns": list(report.columns),
                "rows": rows,
            }
            json.dump(document, out, indent=2)
            out.write("\n")
        elif fmt == "table":
            rows_text = [report.columns, *report.rows]
            count = len(rows_text) - 1
            widths = [max(len(r[i]) for r in rows_text) for i in range(len(report.columns))]
            for key, value in report.meta.items():
                out.write(f"# {key}: {value}\n")
            for row in rows_text:
                out.write("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
                out.write("\n")
        else:
            fail(f"unknown format {fmt!r}: csv, json or table", 2)
    return count


def _run(
    ctx: typer.Context,
    name: str,
    build: Callable[[Settings, Connection], Report],
    fmt: str,
    output: Path | None,
) -> None:
    started = time.perf_counter()
    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        say(f"{name}: running …")
        report = build(settings, conn)
        count = _emit(report, fmt, output)
    where = f" into {output}" if output else ""
    say(f"{name}: {count} rows{where} in {time.perf_counter() - started:.2f} s")


@app.command("activity")
def activity_cmd(
    ctx: typer.Context,
    period: PeriodOption,
    tz: ZoneOption = None,
    fmt: FormatOption = "csv",
    output: OutputOption = None,
) -> None:
    """Deposits, usage, activations, refunds and withdrawals per day."""
    from kassa.reports.activity import activity

    _run(ctx, "activity", lambda s, c: activity(c, _period(s, period, tz)), fmt, output)


@app.command("fees")
def fees_cmd(
    ctx: typer.Context,
    period: PeriodOption,
    tz: ZoneOption = None,
    fmt: FormatOption = "csv",
    output: OutputOption = None,
) -> None:
    """Service fees and network fees charged vs paid, per chain."""
    from kassa.reports.fees import fees

    _run(ctx, "fees", lambda s, c: fees(c, _period(s, period, tz)), fmt, output)


@app.command("fx")
def fx_cmd(
    ctx: typer.Context,
    period: PeriodOption,
    tz: ZoneOption = None,
    fmt: FormatOption = "csv",
    output: OutputOption = None,
) -> None:
    """Spread revenue, realised FX on payouts, unrealised FX on the coins held."""
    from kassa.clock import DatabaseClock
    from kassa.reports.fx import fx

    _run(
        ctx,
        "fx",
        lambda s, c: fx(c, _period(s, period, tz), now=DatabaseClock().now(c)),
        fmt,
        output,
    )


@app.command("sla")
def sla_cmd(
    ctx: typer.Context,
    period: PeriodOption,
    tz: ZoneOption = None,
    fmt: FormatOption = "csv",
    output: OutputOption = None,
) -> None:
    """Refund and withdrawal requests against their review due dates; times to approve and
    to confirm."""
    from kassa.clock import DatabaseClock
    from kassa.reports.sla import sla

    _run(
        ctx,
        "sla",
        lambda s, c: sla(c, _period(s, period, tz), now=DatabaseClock().now(c)),
        fmt,
        output,
    )


@app.command("statement")
def statement_cmd(
    ctx: typer.Context,
    external_id: Annotated[str, typer.Argument(help="The customer's external id")],
    period: PeriodOption,
    tz: ZoneOption = None,
    fmt: FormatOption = "csv",
    output: OutputOption = None,
) -> None:
    """One customer's statement: opening balance, movements with memos, closing balance."""
    from kassa.reports.statement import statement

    _run(
        ctx,
        "statement",
        lambda s, c: statement(c, external_id, _period(s, period, tz)),
        fmt,
        output,
    )


@app.command("trial-balance")
def trial_balance_cmd(
    ctx: typer.Context,
    at: Annotated[
        str | None, typer.Option("--at", help="ISO 8601 instant with a zone (default: now)")
    ] = None,
    fmt: FormatOption = "csv",
    output: OutputOption = None,
) -> None:
    """Every ledger account's debits, credits and balance at an instant."""
    from kassa.clock import DatabaseClock, parse_time
    from kassa.errors import KassaError
    from kassa.reports.trial_balance import trial_balance

    try:
        instant = None if at is None else parse_time(at)
    except KassaError as error:
        fail(error.detail, 2)
    _run(
        ctx,
        "trial-balance",
        lambda s, c: trial_balance(c, instant or DatabaseClock().now(c)),
        fmt,
        output,
    )


@app.command("html")
def html_cmd(
    ctx: typer.Context,
    period: PeriodOption,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write")],
    tz: ZoneOption = None,
) -> None:
    """The self-contained HTML report with charts (activity, fees, FX, solvency)."""
    from kassa.clock import DatabaseClock
    from kassa.reports.html import render_report

    started = time.perf_counter()
    with migrated_database(ctx) as (settings, database), database.transaction() as conn:
        chosen = _period(settings, period, tz)
        say(f"html: {chosen.label} in {chosen.zone.key}: running the reports …")

        def step(name: str) -> None:
            say(f"html: {name} … ({time.perf_counter() - started:.1f} s so far)")

        page = render_report(conn, chosen, now=DatabaseClock().now(conn), progress=step)
    output.write_text(page, encoding="utf-8")
    say(f"html: {output} ({len(page) // 1024} KiB) in {time.perf_counter() - started:.2f} s")


@app.command("daily")
def daily_cmd(
    ctx: typer.Context,
    day: Annotated[
        str | None, typer.Option("--day", help="YYYY-MM-DD (default: yesterday in the zone)")
    ] = None,
) -> None:
    """Write a day's activity-YYYY-MM-DD.{csv,html} into <data_dir>/reports as the worker does
    (nothing when they exist) and record report.ready once."""
    from zoneinfo import ZoneInfo

    from kassa.clock import DatabaseClock
    from kassa.reports.daily import write_daily_activity

    try:
        chosen = None if day is None else date.fromisoformat(day)
    except ValueError:
        fail(f"--day {day!r} is not YYYY-MM-DD", 2)
    with migrated_database(ctx, pool_size=2) as (settings, database):
        zone = ZoneInfo(settings.reports.time_zone)
        done = write_daily_activity(database, DatabaseClock(), settings.data_dir, zone, day=chosen)
    state = "written" if done.written else "already there"
    announced = "recorded" if done.event_recorded else "was recorded before"
    say(f"daily: {done.day} {state}; report.ready {announced}")
    typer.echo(str(done.csv_path))
    typer.echo(str(done.html_path))
