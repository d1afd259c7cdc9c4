"""`kassa bench payouts` end to end with tiny numbers: its own bcoin regtest node, six payouts
paid one per transaction and then in batches of three by two workers on PostgreSQL. It checks
that every payout was verified against the chain and that the figures were written — never how
fast anything was (speed lives in the benchmark's output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kassa_dev.bench import payouts

# Slow (--durations): the payout benchmark on all three chains.
# Not traced by coverage (pytest-cov's `no_cover`): a benchmark's smoke run: the code it drives is
# measured by the behaviour tests; tracing it cost CPU the whole suite shares.
pytestmark = [pytest.mark.no_cover, pytest.mark.slow(seconds=17)]


@pytest.mark.chain
@pytest.mark.postgres
def test_the_payout_benchmark_verifies_every_payout_and_prices_batching(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--chains", "btc", "--payouts", "6", "--batch", "3", "--db", "postgres"]
    argv += ["--mine-every", "0.2", "--timeout", "120", "--out", str(tmp_path)]

    assert payouts.main(argv) == 0

    out = capsys.readouterr().out
    assert "btc BTC, one per tx: verified" in out
    assert "btc BTC, batches of ≤3: verified" in out
    assert "FAIL" not in out
    assert "BTC batching:" in out
    document = json.loads((tmp_path / "payouts.json").read_text())
    single, batched = document["runs"]
    assert single["ok"] and batched["ok"]
    assert single["statuses"] == {"confirmed": 6} and batched["statuses"] == {"confirmed": 6}
    assert (single["transactions"], batched["transactions"]) == (6, 2)
    # Same payouts at the same fee rate: two transactions of three outputs cost less than six.
    assert 0 < batched["fee_paid_native"] < single["fee_paid_native"]
    assert single["sent_per_second"] > 0 and single["confirmed_per_second"] > 0
    assert (tmp_path / "payouts.svg").read_text().startswith("<svg")
