"""The HTML report: one self-contained file with the period's activity, fees, FX, service levels
and liabilities, as tables and as charts drawn by Chart.js.

Chart.js is not fetched from anywhere: its built file (``static/chart.umd.js``, pinned by
``tools/charts/package-lock.json``) ships inside the Python package and is inlined into every
report, so a report opens offline and years later exactly as it was written. The figures travel
as one JSON document in the page (``<script type="application/json" id="report-data">``): the
tables are printed from the same text the CSV carries, the charts read numbers parsed from it.

Charts: daily activity (USD per day and category), fees per chain (service fees, network fees
charged and paid), the FX results per section and asset, and solvency over time (what the house
owes its customers at each day's end; with a `kassa.reports.solvency.CoverageSeries` also what
it holds).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Connection

from kassa.reports import activity as activity_mod
from kassa.reports import fees as fees_mod
from kassa.reports import fx as fx_mod
from kassa.reports import sla as sla_mod
from kassa.reports.model import Report, usd_text
from kassa.reports.period import Period, iso
from kassa.reports.reconciliation.history import held_by_day
from kassa.reports.solvency import CoverageSeries, liabilities_by_day

__all__ = ["CHART_LIBRARY", "chart_library", "render", "render_report"]

CHART_LIBRARY = "chart.umd.js"
"""The vendored Chart.js build, in ``kassa/reports/static``."""


@cache
def chart_library() -> str:
    return resources.files("kassa.reports").joinpath("static", CHART_LIBRARY).read_text("utf-8")


def render_report(
    conn: Connection,
    period: Period,
    *,
    now: datetime,
    coverage: CoverageSeries | None = None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Run the reports of ``period`` and return the HTML page; ``progress`` hears each step.
    ``coverage`` gives what the house held each day (default: the reconciliation runs')."""
    say = progress or (lambda _text: None)
    say("activity")
    rows = activity_mod.activity_rows(conn, period)
    tables = {"activity": Report("activity", activity_mod.COLUMNS, [r.text() for r in rows])}
    say("fees")
    tables["fees"] = fees_mod.fees(conn, period)
    say("fx")
    tables["fx"] = fx_mod.fx(conn, period, now=now)
    say("sla")
    tables["sla"] = sla_mod.sla(conn, period, now=now)
    days = [day.day.isoformat() for day in period.days()]
    daily: dict[str, list[float]] = {}
    for row in rows:
        series = row.category if row.category in ("deposit", "usage") else None
        if row.category == "activation" and row.item == "fulfilled":
            series = "activation"
        if row.category in ("refund", "withdrawal") and row.item == "confirmed":
            series = row.category
        if series is None:
            continue
        values = daily.setdefault(series, [0.0] * len(days))
        values[days.index(row.day)] += _number(usd_text(row.usd))
    say("solvency")
    liabilities = liabilities_by_day(conn, period)
    data: dict[str, Any] = {
        "period": period.describe(),
        "generated_at": iso(now),
        "days": days,
        "daily_usd": daily,
        "fees": [r for r in tables["fees"].records() if r["chain"] != "total"],
        "fx": list(tables["fx"].records()),
        "liabilities": [_number(usd_text(f.usd)) for f in liabilities],
        "coverage": [
            None if f is None else _number(usd_text(f.usd))
            for f in (coverage or held_by_day)(conn, period)
        ],
    }
    return render(period, tables, data)


def render(period: Period, tables: dict[str, Report], data: dict[str, Any]) -> str:
    sections = []
    for name, report in tables.items():
        records = list(report.records())
        tables_data = data.setdefault("tables", {})
        tables_data[name] = {"columns": list(report.columns), "rows": records}
        sections.append(_table(name, report.columns, records))
    payload = json.dumps(data, separators=(",", ":"), sort_keys=True).replace("</", "<\\/")
    title = f"Kassa finance report {period.label} ({period.zone.key})"
    return _PAGE.format(
        title=html.escape(title),
        period=html.escape(
            f"{period.label} in {period.zone.key}: {iso(period.start)} to {iso(period.end)}"
        ),
        generated=html.escape(str(data.get("generated_at", ""))),
        tables="\n".join(sections),
        data=payload,
        library=chart_library(),
        script=_SCRIPT,
    )


def _number(text: str) -> float:
    """A decimal string as a JSON number, for drawing only (tables keep the exact text)."""
    return float(Decimal(text))


def _table(name: str, columns: tuple[str, ...], records: list[dict[str, str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(r[c])}</td>" for c in columns) + "</tr>"
        for r in records
    )
    empty = "" if records else f'<tr><td colspan="{len(columns)}">nothing in this period</td></tr>'
    return (
        f'<section id="table-{name}"><h2>{html.escape(name)}</h2>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}{empty}</tbody></table></section>"
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
.charts {{ display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 1.5rem; }}
.chart {{ position: relative; height: 300px; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin-bottom: 1rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }}
th {{ background: #f3f3f3; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>Period: {period}. Generated {generated}.</p>
<div class="charts">
<div class="chart"><canvas id="chart-activity" aria-label="Daily activity"></canvas></div>
<div class="chart"><canvas id="chart-fees" aria-label="Fees per chain"></canvas></div>
<div class="chart"><canvas id="chart-fx" aria-label="FX results"></canvas></div>
<div class="chart"><canvas id="chart-solvency" aria-label="Solvency over time"></canvas></div>
</div>
{tables}
<script type="application/json" id="report-data">{data}</script>
<script>{library}</script>
<script>{script}</script>
</body>
</html>
"""

_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var colours = ["#2b6cb0", "#38a169", "#d69e2e", "#c53030", "#805ad5", "#319795"];
  Chart.defaults.animation = false;
  function chart(id, type, labels, datasets, title, stacked) {
    return new Chart(document.getElementById(id), {
      type: type,
      data: { labels: labels, datasets: datasets.map(function (d, i) {
        d.backgroundColor = d.backgroundColor || colours[i % colours.length];
        d.borderColor = d.borderColor || colours[i % colours.length];
        return d;
      }) },
      options: { responsive: true, maintainAspectRatio: false,
        plugins: { title: { display: true, text: title } },
        scales: { x: { stacked: !!stacked },
                  y: { stacked: !!stacked, title: { display: true, text: "USD" } } } }
    });
  }
  var daily = Object.keys(data.daily_usd).sort().map(function (k) {
    return { label: k, data: data.daily_usd[k] };
  });
  chart("chart-activity", "bar", data.days, daily, "Daily activity (USD)", true);
  var chains = data.fees.map(function (r) { return r.chain + " " + r.kind; });
  function col(rows, name) { return rows.map(function (r) { return parseFloat(r[name]); }); }
  chart("chart-fees", "bar", chains, [
    { label: "service fees", data: col(data.fees, "service_fees_usd") },
    { label: "network fee charged", data: col(data.fees, "network_fee_charged_usd") },
    { label: "network fee paid", data: col(data.fees, "network_fee_paid_usd") }
  ], "Fees per chain (USD)");
  chart("chart-fx", "bar", data.fx.map(function (r) { return r.section + " " + r.asset; }), [
    { label: "result", data: col(data.fx, "result_usd") }
  ], "FX results (USD)");
  var solvency = [{ label: "owed to customers", data: data.liabilities, fill: false }];
  if (data.coverage.some(function (v) { return v !== null; })) {
    solvency.push({ label: "held (coverage)", data: data.coverage, fill: false });
  }
  chart("chart-solvency", "line", data.days, solvency, "Solvency over time (USD, end of day)");
  window.kassaChartsReady = true;
})();
"""
