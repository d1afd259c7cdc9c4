"""`kassa bench http-cost` end to end with tiny numbers on SQLite: two real `kassa serve`
processes (this tree, and this tree again as the "before" side), requests one at a time, the
server's CPU read around each batch. It checks that figures were produced for every scenario
and side — never how fast anything was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kassa
from kassa_dev.bench import http_cost

# Starts two server processes.
# Not traced by coverage (pytest-cov's `no_cover`): a benchmark's smoke run: the code it drives is
# measured by the behaviour tests; tracing it cost CPU the whole suite shares.
pytestmark = [pytest.mark.no_cover, pytest.mark.slow(seconds=30)]


def test_the_http_cost_benchmark_measures_both_sides(tmp_path: Path) -> None:
    out_file = tmp_path / "cost.json"
    source = Path(kassa.__file__).resolve().parent.parent
    argv = ["--db", "sqlite", "--batches", "2", "--batch", "3", "--warmup", "2"]
    argv += ["--compare", str(source), "--json", str(out_file)]

    assert http_cost.main(argv) == 0

    figures = json.loads(out_file.read_text())["sqlite"]
    assert set(figures) == {"healthz", "balance", "usage"}
    for scenario in figures.values():
        per_side = scenario["cpu_ms_per_request"]
        assert set(per_side) == {"before", "after"}
        assert all(len(batches) == 2 and min(batches) > 0 for batches in per_side.values())
