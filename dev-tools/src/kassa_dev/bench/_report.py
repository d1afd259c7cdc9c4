"""The figures: one result per database, the table of targets, the JSON document."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kassa_dev.bench._cpu import CpuUsage
from kassa_dev.bench._databases import POSTGRES, SQLITE
from kassa_dev.bench._phases import PhaseResult
from kassa_dev.bench._verify import Check, consistent

TRANSFERS_PER_SECOND_TARGET = {POSTGRES: 1_000.0, SQLITE: 500.0}
RATIO_TARGET = {POSTGRES: 0.5}
HOT_TRANSFERS_PER_SECOND_TARGET = 300.0
USAGE_POSTINGS_PER_SECOND_TARGET = 10_000.0


@dataclass(frozen=True, slots=True)
class Phases:
    raw: PhaseResult
    transfers: PhaseResult
    """`commit_transfer`: the transfer is the whole unit of work."""
    hot: PhaseResult
    """`commit_transfer` into one account (house revenue) from every writer."""
    usage: tuple[PhaseResult, ...]
    """Usage batches with N writers and (when N > 1) with one writer."""
    raw_autocommit: PhaseResult | None = None
    """PostgreSQL only: the raw insert in one round trip, the way `commit_transfer` talks."""
    in_transaction: PhaseResult | None = None
    """PostgreSQL only: `transfer` inside `db.transaction()` (BEGIN, call, COMMIT)."""

    @property
    def best_usage(self) -> PhaseResult:
        return max(self.usage, key=lambda phase: phase.postings_per_second)

    @property
    def ratio(self) -> float:
        return self.transfers.commits_per_second / self.raw.commits_per_second

    def all(self) -> tuple[PhaseResult, ...]:
        extra = tuple(p for p in (self.raw_autocommit, self.in_transaction) if p is not None)
        return (self.raw, *extra[:1], self.transfers, *extra[1:], self.hot, *self.usage)


@dataclass(slots=True)
class DatabaseRun:
    name: str
    where: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    durable: bool = False
    phases: Phases | None = None
    checks: list[Check] = field(default_factory=list)
    error: str | None = None

    @property
    def consistent(self) -> bool:
        return bool(self.checks) and consistent(self.checks)


@dataclass(frozen=True, slots=True)
class Row:
    database: str
    metric: str
    value: str
    target: str = "—"
    met: bool | None = None


def rows_for(run: DatabaseRun) -> list[Row]:
    if run.error is not None or run.phases is None:
        return [Row(run.name, "benchmark", "FAILED", "runs", False)]
    phases = run.phases
    return [
        Row(run.name, "durable commits (settings above)", _yes(run.durable), "yes", run.durable),
        *_transfer_rows(run.name, phases),
        *_usage_rows(run.name, phases),
        Row(run.name, "ledger consistent", _yes(run.consistent), "yes", run.consistent),
    ]


def _transfer_rows(name: str, phases: Phases) -> list[Row]:
    transfers, raw = phases.transfers, phases.raw
    target = TRANSFERS_PER_SECOND_TARGET[name]
    ratio_target = RATIO_TARGET.get(name)
    return [
        Row(
            name,
            f"transfers/s, {_writers(transfers)}",
            _rate(transfers.commits_per_second),
            f"≥ {target:,.0f}",
            transfers.commits_per_second >= target,
        ),
        Row(name, f"raw INSERT+COMMIT/s, {_writers(raw)}", _rate(raw.commits_per_second)),
        Row(
            name,
            "ratio transfers/s ÷ raw/s",
            f"{phases.ratio:.0%}",
            "—" if ratio_target is None else f"≥ {ratio_target:.0%}",
            None if ratio_target is None else phases.ratio >= ratio_target,
        ),
        *_side_rows(name, phases),
        Row(
            name,
            f"hot account transfers/s (all into revenue), {_writers(phases.hot)}",
            _rate(phases.hot.commits_per_second),
            f"≥ {HOT_TRANSFERS_PER_SECOND_TARGET:,.0f}",
            phases.hot.commits_per_second >= HOT_TRANSFERS_PER_SECOND_TARGET,
        ),
    ]


def _side_rows(name: str, phases: Phases) -> list[Row]:
    """The figures beside the target: the raw insert in one round trip (the same trip count
    as a committed transfer) and the transfer inside BEGIN … COMMIT (how it was)."""
    rows = []
    cpu_ratio = _cpu_ratio(phases.raw, phases.transfers)
    if cpu_ratio is not None:
        rows.append(Row(name, "ratio by CPU per commit: raw ÷ transfers", f"{cpu_ratio:.0%}"))
    transfers = phases.transfers.commits_per_second
    if phases.raw_autocommit is not None:
        raw = phases.raw_autocommit.commits_per_second
        rows += [
            Row(name, "raw INSERT, one autocommit round trip/s", _rate(raw)),
            Row(name, "ratio transfers/s ÷ one-round-trip raw/s", f"{transfers / raw:.0%}"),
        ]
    if phases.in_transaction is not None:
        inside = phases.in_transaction.commits_per_second
        rows += [
            Row(name, "transfers/s inside BEGIN … COMMIT", _rate(inside)),
            Row(
                name,
                "ratio inside BEGIN … COMMIT ÷ raw/s",
                f"{inside / phases.raw.commits_per_second:.0%}",
            ),
        ]
    return rows


def _cpu_ratio(raw: PhaseResult, transfers: PhaseResult) -> float | None:
    """What the throughput ratio would be if CPU were the only bound: client plus server CPU
    per raw commit over the same per transfer. It barely moves when other work shares the
    machine, which squeezes both rates towards the same crawl and flatters the plain ratio."""
    costs = [_cpu_per_commit(phase) for phase in (raw, transfers)]
    if costs[0] is None or costs[1] is None or costs[1] == 0:
        return None
    return costs[0] / costs[1]


def _cpu_per_commit(phase: PhaseResult) -> float | None:
    client = phase.cpu.client_cpu_seconds_per_commit
    server = phase.cpu.server_cpu_seconds_per_commit
    return None if client is None or server is None else client + server


def _usage_rows(name: str, phases: Phases) -> list[Row]:
    rows = [
        Row(name, f"usage postings/s, {_writers(phase)}", _usage_value(phase))
        for phase in phases.usage
    ]
    best = phases.best_usage
    rows.append(
        Row(
            name,
            f"usage postings/s, best ({_writers(best)})",
            _usage_value(best),
            f"≥ {USAGE_POSTINGS_PER_SECOND_TARGET:,.0f}",
            best.postings_per_second >= USAGE_POSTINGS_PER_SECOND_TARGET,
        )
    )
    return rows


def _usage_value(phase: PhaseResult) -> str:
    return f"{_rate(phase.postings_per_second)} ({phase.commits_per_second:,.1f} batches/s)"


def _writers(phase: PhaseResult) -> str:
    return f"{phase.writers} writer{'s' if phase.writers != 1 else ''}"


def _rate(per_second: float) -> str:
    return f"{per_second:,.0f}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _met(flag: bool | None) -> str:
    if flag is None:
        return "—"
    return "yes" if flag else "NO"


def table(rows: Sequence[Row]) -> str:
    header = ("database", "metric", "value", "target", "met?")
    return _grid(header, [(r.database, r.metric, r.value, r.target, _met(r.met)) for r in rows])


def cpu_text(cpu: CpuUsage) -> str:
    client, server = _ms(cpu.client_cpu_seconds_per_commit), _ms(cpu.server_cpu_seconds_per_commit)
    return (
        f"CPU per commit: client {client}, server {server}; machine busy "
        f"{_share(cpu.machine_busy_fraction)} (others {_share(cpu.others_fraction)})"
    )


def cpu_table(runs: Sequence[DatabaseRun]) -> str:
    header = ("database", "phase", "commits/s", "client CPU", "server CPU", "busy", "others")
    lines = [
        (
            run.name,
            f"{phase.label}, {_writers(phase)}",
            f"{phase.commits_per_second:,.1f}",
            _ms(phase.cpu.client_cpu_seconds_per_commit),
            _ms(phase.cpu.server_cpu_seconds_per_commit),
            _share(phase.cpu.machine_busy_fraction),
            _share(phase.cpu.others_fraction),
        )
        for run in runs
        if run.phases is not None
        for phase in run.phases.all()
    ]
    return _grid(header, lines)


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.2f} ms"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _grid(header: tuple[str, ...], body: Sequence[tuple[str, ...]]) -> str:
    cells = [header, *body]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            kib = int(meminfo.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(kib / 2**20, 1)


def document(runs: Sequence[DatabaseRun], options: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine": machine(),
        "options": options,
        "databases": [_run_document(run) for run in runs],
        "rows": [asdict(row) for row in (row for run in runs for row in rows_for(run))],
    }


def _run_document(run: DatabaseRun) -> dict[str, Any]:
    phases = [] if run.phases is None else run.phases.all()
    return {
        "database": run.name,
        "where": run.where,
        "settings": run.settings,
        "durable": run.durable,
        "error": run.error,
        "ledger_consistent": run.consistent,
        "checks": [asdict(check) for check in run.checks],
        "phases": [_phase_document(phase) for phase in phases],
        "ratio": None if run.phases is None else run.phases.ratio,
    }


def _phase_document(phase: PhaseResult) -> dict[str, Any]:
    return {
        **asdict(phase),
        "commits_per_second": phase.commits_per_second,
        "postings_per_second": phase.postings_per_second,
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
