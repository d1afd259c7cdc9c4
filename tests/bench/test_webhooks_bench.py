"""`kassa bench webhooks` end to end with tiny numbers on SQLite: its receiver, one sender
process, one short round of each write phase. It checks that every event was delivered exactly
once and that the figures were written — never how fast anything was (speed lives in the
benchmark's output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kassa_dev.bench import webhooks

# Slow (--durations): spawns a receiver, a sender and the usage writers.
# Not traced by coverage (pytest-cov's `no_cover`): a benchmark's smoke run: the code it drives is
# measured by the behaviour tests; tracing it cost CPU the whole suite shares.
pytestmark = [pytest.mark.no_cover, pytest.mark.slow(seconds=13)]


def test_the_webhook_benchmark_delivers_each_event_once_and_measures_both_sides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "webhooks.json"
    argv = ["--db", "sqlite", "--events", "60", "--workers", "1", "--writers", "1"]
    argv += ["--seconds", "1"]
    argv += ["--rounds", "1", "--batch-lines", "10", "--accounts", "10", "--json", str(out_file)]

    assert webhooks.main(argv) == 0

    out = capsys.readouterr().out
    assert "each exactly once: yes" in out
    assert "outbox + delivery cost on the write path: ratio" in out
    figures = json.loads(out_file.read_text())
    assert figures["delivered_once"] and figures["events"] == 60 and figures["workers"] == 1
    assert figures["deliveries_per_second"] > 0 and figures["ratio"] > 0
    assert figures["without_endpoint"]["postings_per_second"] > 0
    assert figures["error"] is None
