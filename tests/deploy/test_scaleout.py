"""The short scale-out run (issue 19): `kassa bench scaleout` for 30 s of load in CI.

Every role runs twice as a real `kassa` process on one fresh PostgreSQL database and local
chains: the session's bcoin and TRON simulator, and a ganache of its own that mines every
second as the bench's does (`scaleout.ETH_BLOCK_SECONDS` says why). A kill every 4.5 s deals
each of the six roles (api, worker, payout-worker and the three chains' watchers) one SIGKILL
and restart, in an order shuffled by a fixed seed. The run must end with every deposit
credited once, every payout paid once as the chain nodes tell, `kassa doctor` clean, every
watcher takeover within the lease (plus a poll) and no process ending by itself. The
ten-minute version is `kassa bench scaleout` (docs/benchmarks.md).
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest

from kassa_dev.bench import scaleout
from kassa_dev.bench._progress import Progress
from kassa_dev.devnet.testing import BitcoinNode, TronNode, start_ganache_node

SEED = 19
"""The kill order's seed (printed by the run; any seed kills every role once in six kills)."""


@pytest.mark.slow(seconds=80)
@pytest.mark.chain
@pytest.mark.postgres
def test_every_role_survives_a_sigkill_with_money_moved_exactly_once(
    bitcoin_node: BitcoinNode, tron_sim: TronNode, tmp_path: Path
) -> None:
    options = scaleout.Options(minutes=0.5, kill_every=4.5, lease=5, seed=SEED, drain_timeout=90)
    out = io.StringIO()
    with start_ganache_node(tmp_path / "eth", block_time=scaleout.ETH_BLOCK_SECONDS) as eth:
        result = scaleout.run(
            options, Progress(120, out), tmp_path, scaleout.Nodes(bitcoin_node, eth, tron_sim)
        )
    lines: list[str] = []
    scaleout.print_summary(result, lines.append)
    report = out.getvalue() + "\n".join(lines)
    print(report)  # shown with -s or on failure: the run's progress and summary
    assert result.ok, report
    assert Counter(kill.role for kill in result.kills) == dict.fromkeys(scaleout.ROLES, 1), report
    assert {t.chain for t in result.takeovers} == {"btc", "eth", "tron"}, report
    assert result.deposits_sent >= 5, report
    assert result.payouts_requested >= 3, report
