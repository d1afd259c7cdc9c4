"""`kassa bench watchers` end to end with tiny numbers: its own bcoin regtest node, 200 watched
addresses, 3 blocks (two of them paid), SQLite. It checks that the run verified every deposit
and wrote its figures — never how fast anything was (speed lives in the benchmark's output).
And the verification must be able to fail: a payment the watcher never saw is reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kassa.chains.network import Chain
from kassa.db import Database
from kassa_dev.bench import watchers
from kassa_dev.bench._watch_model import PaidDeposit
from kassa_dev.bench._watch_verify import passed, verify

# Slow (--durations): the watcher benchmark on all three chains.
# Not traced by coverage (pytest-cov's `no_cover`): a benchmark's smoke run: the code it drives is
# measured by the behaviour tests; tracing it cost CPU the whole suite shares.
pytestmark = [pytest.mark.no_cover, pytest.mark.slow(seconds=8)]


@pytest.mark.chain
def test_the_watcher_benchmark_credits_every_paid_deposit_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--chains", "btc", "--addresses", "200", "--blocks", "3", "--deposits-per-block"]
    argv += ["3", "--allocate", "20", "--db", "sqlite", "--out", str(tmp_path)]

    assert watchers.main(argv) == 0

    out = capsys.readouterr().out
    assert "btc/sqlite: verified" in out
    assert "FAIL" not in out
    [chain] = json.loads((tmp_path / "watchers.json").read_text())["chains"]
    [sqlite] = chain["databases"]
    assert chain["deposits"] == 6 and chain["funded_blocks"] == 2
    assert sqlite["verified"] and all(check["ok"] for check in sqlite["checks"])
    assert sqlite["watcher"]["credited"] == 6 and sqlite["watcher"]["watched"] == 200
    assert sqlite["addresses_allocated"] == 20
    assert chain["addresses_derived_per_second"] > 0
    assert (tmp_path / "watchers.svg").read_text().startswith("<svg")


def test_a_payment_the_watcher_never_recorded_fails_verification(db: Database) -> None:
    never_seen = PaidDeposit("bcrt1qexample", "BTC", 10_000, "ab" * 32, position=0, height=7)

    checks = verify(db, Chain.BTC, [never_seen])

    assert not passed(checks)
    failed = {check.name for check in checks if not check.ok}
    assert "every paid deposit recorded: its address, asset, amount and block" in failed
    assert "one deposit ledger transaction per credit, nothing more" in failed
    assert passed(verify(db, Chain.BTC, []))
