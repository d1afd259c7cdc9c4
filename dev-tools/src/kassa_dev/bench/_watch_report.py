"""The figures of `kassa bench watchers`: per chain and database, the tables, the JSON document
and a bar chart written as SVG by hand (no plotting library is installed)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kassa.chains.network import Chain
from kassa_dev.bench._chart import panels_svg
from kassa_dev.bench._report import machine
from kassa_dev.bench._watch_addresses import Population
from kassa_dev.bench._watch_fetch import FetchFigures
from kassa_dev.bench._watch_model import Check
from kassa_dev.bench._watch_run import WatcherFigures
from kassa_dev.bench._watch_verify import passed


@dataclass(slots=True)
class DatabaseRun:
    database: str
    where: str = ""
    population: Population | None = None
    watcher: WatcherFigures | None = None
    checks: list[Check] = field(default_factory=list)
    error: str | None = None

    @property
    def verified(self) -> bool:
        return self.error is None and passed(self.checks)


@dataclass(slots=True)
class ChainRun:
    chain: Chain
    addresses: int
    derive_seconds: float | None = None
    range_start: int | None = None
    range_end: int | None = None
    funded_blocks: int = 0
    deposits: int = 0
    funding_seconds: float | None = None
    bare_passes: list[FetchFigures] = field(default_factory=list)
    scanner_passes: list[FetchFigures] = field(default_factory=list)
    """The baselines are measured before the first database's watcher and again after each
    one: a node's answer time drifts by a third within minutes on a shared machine, and the
    median pass is what the watchers are compared with."""
    databases: list[DatabaseRun] = field(default_factory=list)
    error: str | None = None

    @property
    def bare(self) -> FetchFigures | None:
        return _median_pass(self.bare_passes)

    @property
    def scanner(self) -> FetchFigures | None:
        return _median_pass(self.scanner_passes)

    @property
    def derived_per_second(self) -> float | None:
        if not self.derive_seconds:
            return None
        return self.addresses / self.derive_seconds

    @property
    def blocks(self) -> int:
        if self.range_start is None or self.range_end is None:
            return 0
        return self.range_end - self.range_start + 1

    @property
    def ok(self) -> bool:
        return self.error is None and all(run.verified for run in self.databases)


def _median_pass(passes: Sequence[FetchFigures]) -> FetchFigures | None:
    """The pass of median time (the slower of the middle two of an even number)."""
    if not passes:
        return None
    return sorted(passes, key=lambda figures: figures.seconds)[len(passes) // 2]


# --------------------------------------------------------------------------- text


def chain_header(run: ChainRun) -> str:
    text = f"{run.chain}: {run.addresses:,} watched addresses"
    if run.range_start is not None:
        text += (
            f"; blocks {run.range_start:,}…{run.range_end:,} ({run.blocks:,} blocks, "
            f"{run.funded_blocks:,} with {run.deposits:,} deposits)"
        )
    return text


def chain_figures(run: ChainRun) -> str:
    """The figures that do not depend on the database."""
    lines = [
        ("addresses derived/s (HdDeriver.address_at)", _rate(run.derived_per_second)),
        ("raw RPC fetch, blocks/s (bare requests)", _blocks(run.bare_passes)),
        ("scanner fetch, blocks/s (scanner.block alone)", _blocks(run.scanner_passes)),
    ]
    width = max(len(metric) for metric, _ in lines)
    return "\n".join(f"  {metric.ljust(width)}  {value}" for metric, value in lines)


def watcher_table(run: ChainRun) -> str:
    """One column per database."""
    raw = run.bare.blocks_per_second if run.bare else None
    scanner = run.scanner.blocks_per_second if run.scanner else None
    rows: list[tuple[str, ...]] = []
    per_watcher: list[tuple[str, Callable[[WatcherFigures], str]]] = [
        ("watcher, blocks/s (whole run)", lambda w: _rate(w.blocks_per_second)),
        ("watcher, deposits/s (whole run)", lambda w: _rate(w.deposits_per_second)),
        ("ratio watcher ÷ raw RPC fetch", lambda w: _ratio(w.blocks_per_second, raw)),
        ("ratio watcher ÷ scanner fetch", lambda w: _ratio(w.blocks_per_second, scanner)),
        ("watcher, blocks/s (without start-up)", lambda w: _rate(w.running_blocks_per_second)),
        (
            "ratio without start-up ÷ raw RPC fetch",
            lambda w: _ratio(w.running_blocks_per_second, raw),
        ),
        (
            "ratio without start-up ÷ scanner fetch",
            lambda w: _ratio(w.running_blocks_per_second, scanner),
        ),
        (
            "scan loop, blocks/s (wait for blocks + store)",
            lambda w: _rate(w.scan_blocks_per_second),
        ),
        ("credit phase, deposits/s (lock + credit)", lambda w: _rate(w.settle_deposits_per_second)),
        ("time: start-up (load the watched set)", lambda w: _seconds(w.load_seconds)),
        ("time: in the scanner (head, hashes, blocks)", lambda w: _seconds(w.scanner_seconds)),
        ("time: waiting for the next block", _waiting),
        ("old per-block set copy, est. (not paid)", _copies),
        ("time: storing blocks (batched transactions)", lambda w: _seconds(w.store_seconds)),
        ("time: crediting (rate lock + credit)", lambda w: _seconds(w.settle_seconds)),
        ("time: the rest / whole run", _rest),
        ("CPU: bench process / node / PG backend", _cpu),
        ("machine busy (others)", _busy),
    ]
    for metric, shown in per_watcher:
        rows.append(
            (metric, *["—" if db.watcher is None else shown(db.watcher) for db in run.databases])
        )
    rows.append(
        (
            "addresses allocated/s (get_or_create, 1 tx each)",
            *[
                "—" if db.population is None else _rate(db.population.allocated_per_second)
                for db in run.databases
            ],
        )
    )
    rows.append(("verified", *[_verdict(db) for db in run.databases]))
    return _grid(("watcher", *[db.database for db in run.databases]), rows)


def summary_table(runs: Sequence[ChainRun]) -> str:
    header = (
        "chain",
        "database",
        "derived/s",
        "raw RPC blk/s",
        "scanner blk/s",
        "watcher blk/s",
        "deposits/s",
        "watcher÷raw",
        "watcher÷scanner",
        "w/o start-up ÷raw / ÷scanner",
        "verified",
    )
    rows = []
    for run in runs:
        raw = run.bare.blocks_per_second if run.bare else None
        scanner = run.scanner.blocks_per_second if run.scanner else None
        for db in run.databases or [DatabaseRun("—", error=run.error)]:
            watcher = db.watcher
            rows.append(
                (
                    str(run.chain),
                    db.database,
                    _rate(run.derived_per_second),
                    _rate(raw),
                    _rate(scanner),
                    _rate(None if watcher is None else watcher.blocks_per_second),
                    _rate(None if watcher is None else watcher.deposits_per_second),
                    _ratio(None if watcher is None else watcher.blocks_per_second, raw),
                    _ratio(None if watcher is None else watcher.blocks_per_second, scanner),
                    "—"
                    if watcher is None
                    else f"{_ratio(watcher.running_blocks_per_second, raw)} / "
                    f"{_ratio(watcher.running_blocks_per_second, scanner)}",
                    _verdict(db),
                )
            )
    return _grid(header, rows)


def _verdict(db: DatabaseRun) -> str:
    if db.error is not None:
        return "FAIL (error)"
    return "ok" if db.verified else "FAIL"


def _rate(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _blocks(passes: Sequence[FetchFigures]) -> str:
    """The median pass's rate, and every pass's when there are several."""
    figures = _median_pass(passes)
    if figures is None:
        return "—"
    requests = "" if figures.requests is None else f", {figures.requests:,} requests"
    text = f"{_rate(figures.blocks_per_second)} ({figures.seconds:.2f} s{requests})"
    if len(passes) > 1:
        each = " / ".join(_rate(one.blocks_per_second) for one in passes)
        text += f"; median of {len(passes)} passes: {each}"
    return text


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{value / base:.0%}"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _copies(watcher: WatcherFigures) -> str:
    each = watcher.set_copy_seconds_each * 1000
    return f"{watcher.set_copy_seconds:.2f} s ({each:.2f} ms × {watcher.blocks:,})"


def _waiting(watcher: WatcherFigures) -> str:
    how = "prefetched" if watcher.prefetch else "no prefetch"
    return f"{watcher.wait_seconds:.2f} s ({how})"


def _rest(watcher: WatcherFigures) -> str:
    return f"{watcher.other_seconds:.2f} s / {watcher.seconds:.2f} s"


def _cpu(watcher: WatcherFigures) -> str:
    cpu = watcher.cpu
    return " / ".join(_seconds(value) for value in (cpu.bench_seconds, cpu.node_seconds)) + (
        "" if cpu.database_seconds is None else f" / {_seconds(cpu.database_seconds)}"
    )


def _busy(watcher: WatcherFigures) -> str:
    if watcher.cpu.machine_busy_fraction is None:
        return "—"
    others = watcher.cpu.others_fraction
    return f"{watcher.cpu.machine_busy_fraction:.0%} ({'—' if others is None else f'{others:.0%}'})"


def _grid(header: tuple[str, ...], body: Sequence[tuple[str, ...]]) -> str:
    cells = [header, *body]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = [
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- JSON


def document(runs: Sequence[ChainRun], options: dict[str, Any]) -> dict[str, Any]:
    return {
        "benchmark": "watchers",
        "machine": machine(),
        "options": options,
        "chains": [_chain_document(run) for run in runs],
    }


def _chain_document(run: ChainRun) -> dict[str, Any]:
    return {
        "chain": str(run.chain),
        "addresses": run.addresses,
        "addresses_derived_per_second": run.derived_per_second,
        "derive_seconds": run.derive_seconds,
        "range": {"start": run.range_start, "end": run.range_end, "blocks": run.blocks},
        "funded_blocks": run.funded_blocks,
        "deposits": run.deposits,
        "funding_seconds": run.funding_seconds,
        "raw_rpc_fetch": _fetch_document(run.bare),
        "scanner_fetch": _fetch_document(run.scanner),
        "raw_rpc_fetch_passes": [_fetch_document(figures) for figures in run.bare_passes],
        "scanner_fetch_passes": [_fetch_document(figures) for figures in run.scanner_passes],
        "databases": [_database_document(run, db) for db in run.databases],
        "error": run.error,
        "ok": run.ok,
    }


def _fetch_document(figures: FetchFigures | None) -> dict[str, Any] | None:
    if figures is None:
        return None
    return {**asdict(figures), "blocks_per_second": figures.blocks_per_second}


def _database_document(run: ChainRun, db: DatabaseRun) -> dict[str, Any]:
    watcher = db.watcher
    population = db.population
    raw = run.bare.blocks_per_second if run.bare else None
    scanner = run.scanner.blocks_per_second if run.scanner else None
    return {
        "database": db.database,
        "where": db.where,
        "setup_bulk_seconds": None if population is None else population.bulk_seconds,
        "addresses_allocated": None if population is None else population.allocated,
        "addresses_allocated_per_second": None
        if population is None
        else population.allocated_per_second,
        "watcher": None
        if watcher is None
        else {
            **asdict(watcher),
            "blocks_per_second": watcher.blocks_per_second,
            "running_blocks_per_second": watcher.running_blocks_per_second,
            "deposits_per_second": watcher.deposits_per_second,
            "scan_blocks_per_second": watcher.scan_blocks_per_second,
            "set_copy_seconds": watcher.set_copy_seconds,
            "settle_deposits_per_second": watcher.settle_deposits_per_second,
            "other_seconds": watcher.other_seconds,
            "ratio_to_raw_rpc": watcher.blocks_per_second / raw if raw else None,
            "ratio_to_scanner": watcher.blocks_per_second / scanner if scanner else None,
            "running_ratio_to_raw_rpc": watcher.running_blocks_per_second / raw if raw else None,
            "running_ratio_to_scanner": (
                watcher.running_blocks_per_second / scanner if scanner else None
            ),
        },
        "checks": [asdict(check) for check in db.checks],
        "verified": db.verified,
        "error": db.error,
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- SVG chart

COLOURS = {"raw": "#4c78a8", "scanner": "#72b7b2", "sqlite": "#f58518", "postgres": "#54a24b"}


def chart_svg(runs: Sequence[ChainRun]) -> str:
    """Three panels, each on its own linear scale: blocks/s (raw RPC, scanner, watcher per
    database), deposits/s per database, addresses derived/s; one bar group per chain."""
    panels: list[tuple[str, list[tuple[str, float, str]]]] = [
        ("blocks/s", []),
        ("deposits/s (watcher, whole run)", []),
        ("addresses derived/s", []),
    ]
    for run in runs:
        if run.bare:
            panels[0][1].append((f"{run.chain} raw RPC", run.bare.blocks_per_second, "raw"))
        if run.scanner:
            panels[0][1].append(
                (f"{run.chain} scanner.block", run.scanner.blocks_per_second, "scanner")
            )
        for db in run.databases:
            if db.watcher is not None:
                colour = db.database if db.database in COLOURS else "sqlite"
                panels[0][1].append(
                    (f"{run.chain} watcher, {db.database}", db.watcher.blocks_per_second, colour)
                )
                panels[1][1].append(
                    (f"{run.chain} {db.database}", db.watcher.deposits_per_second, colour)
                )
        if run.derived_per_second is not None:
            panels[2][1].append((str(run.chain), run.derived_per_second, "raw"))
    return panels_svg(
        [
            (title, [(label, value, COLOURS[c]) for label, value, c in bars])
            for title, bars in panels
        ],
        _rate,
    )
