"""`kassa bench reports` end to end at a tiny size on SQLite: the synthetic history is built
balanced, every report runs in its own process and its figures are written. Never how fast
(speed lives in the benchmark's output and docs/benchmarks.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kassa_dev.bench import reports

pytestmark = pytest.mark.slow


def test_the_reports_benchmark_runs_every_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = tmp_path / "reports.json"
    argv = ["--db", "sqlite", "--postings", "3000", "--customers", "5", "--json", str(figures)]
    argv += ["--only", "activity,trial-balance-end,statement"]
    assert reports.main(argv) == 0
    out = capsys.readouterr().out
    assert "sqlite: built 3,00" in out and "books balanced: True" in out
    document = json.loads(figures.read_text())
    (run,) = document["runs"]
    assert run["ok"] and run["balanced"] and run["postings"] >= 3000
    assert set(run["reports"]) == {"activity", "trial-balance-end", "statement"}
    for name in ("activity", "trial-balance-end", "statement"):
        figure = run["reports"][name]
        assert figure["rows"] > 0 and figure["peak_mb"] > 0, (name, figure)
