"""`kassa bench reports` end to end at a tiny size on SQLite: the synthetic history is built
balanced and reconciles, every report runs in its own process and its figures are written.
Never how fast (speed lives in the benchmark's output and docs/benchmarks.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kassa.db import Database
from kassa.deposits.tables import deposit
from kassa_dev.bench import reports
from kassa_dev.bench._progress import Progress

# Not traced by coverage (pytest-cov's `no_cover`): a benchmark's smoke run: the code it drives is
# measured by the behaviour tests; tracing it cost CPU the whole suite shares.
pytestmark = [pytest.mark.no_cover, pytest.mark.slow]


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


def test_the_synthetic_history_reconciles_and_the_broken_one_breaks_per_deposit(
    tmp_path: Path,
) -> None:
    """The `reconciliation` slot measures the normal case (no break) and
    `reconciliation-breaks` the worst one (a break per deposit), in this process."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'bench.db'}", pool_size=1)
    try:
        options = reports.parse_args(["--db", "sqlite", "--postings", "3000", "--customers", "5"])
        reports.build(db, options, Progress(planned_seconds=1))
        assert reports._reconcile(db) == 0
        with db.transaction() as conn:
            deposits = conn.execute(select(func.count()).select_from(deposit)).scalar_one()
        assert deposits > 0 and reports._reconcile_broken(db) == deposits
        assert reports._reconcile(db) == 0  # the records put back, the breaks resolved
    finally:
        db.dispose()
