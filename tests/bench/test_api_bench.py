"""`kassa bench api` end to end with tiny numbers on SQLite: a real `kassa serve` process driven
by wrk, then the books checked (every 2xx usage answer charged exactly once). It checks that the
figures were produced and the books agree — never how fast anything was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kassa_dev.bench import api

# Slow (--durations): starts a server process and wrk.
# Not traced by coverage (pytest-cov's `no_cover`): a benchmark's smoke run: the code it drives is
# measured by the behaviour tests; tracing it cost CPU the whole suite shares.
pytestmark = [
    pytest.mark.no_cover,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is missing: ./dev setup"),
]


def test_the_api_benchmark_measures_and_checks_the_books(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "api.json"
    argv = ["--db", "sqlite", "--duration", "1", "--warmup", "0", "--concurrency", "4"]
    argv += ["--scenarios", "usage,healthz", "--accounts", "3", "--json", str(out_file)]

    assert api.main(argv) == 0

    out = capsys.readouterr().out
    assert "FAILED" not in out
    assert "every 2xx usage answer's event is in the books" in out
    [database] = json.loads(out_file.read_text())["databases"]
    assert database["consistent"] and database["error"] is None
    runs = {run["scenario"]: run for run in database["runs"]}
    assert runs["usage"]["ok"] > 0 and runs["healthz"]["ok"] > 0
    assert runs["usage"]["refused"] == 0
