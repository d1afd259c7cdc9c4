"""The worker roles' own metrics listeners, scraped from real processes on PostgreSQL and the
local Ethereum node: `kassa worker`, `kassa watch --chain eth` and `kassa payout-worker` with
``--metrics-port`` (docs/operations.md, Metrics of the worker processes)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from tests.conftest import DatabaseFactory
from tests.deploy.roles import Role, base_env, running, wait_for

from kassa.payouts.signer import create_key_file
from kassa_dev.devnet.testing import GanacheNode, free_port

TOKEN = "metrics-token-0123456789"  # noqa: S105 - a test's own scrape token


def _has(role: Role, name: str, token: str | None = None, **labels: str) -> float | None:
    """The sample's value in a scrape of ``role``, or None while it is not there."""
    return role.scrape(token).get((name, tuple(sorted(labels.items()))))


@pytest.mark.chain
@pytest.mark.postgres
def test_worker_watcher_and_payout_worker_serve_their_metrics(
    pg_databases: DatabaseFactory, ganache_node: GanacheNode, tmp_path: Path
) -> None:
    database = pg_databases.new(pool_size=1)
    env = base_env(database.engine.url.render_as_string(hide_password=False), tmp_path / "data")
    env |= {
        "KASSA_CHAINS__ETH__RPC_URL": ganache_node.url,
        "KASSA_CHAINS__ETH__USDT_CONTRACT": ganache_node.usdt_address,
        "KASSA_CHAINS__ETH__POLL_INTERVAL_SECONDS": "0.2",
        "KASSA_HOLD_SWEEP_INTERVAL_SECONDS": "1",
        # Static rates for BTC only: the source answers "unsupported_symbol" for the others.
        "KASSA_PRICING__STATIC_RATES": '{"BTC": "60000"}',
        "KASSA_PRICING__REFRESH_INTERVAL_SECONDS": "1",
    }
    keys = tmp_path / "signer"
    create_key_file(keys / "eth.json", "metrics-test", iterations=2)
    (tmp_path / "signer-password").write_text("metrics-test\n")
    with running(env, tmp_path) as roles:
        worker = roles.start(
            "worker", "worker", metrics_port=free_port(), KASSA_METRICS__TOKEN=TOKEN
        )
        watcher = roles.start("watch-eth", "watch", "--chain", "eth", metrics_port=free_port())
        payouts = roles.start(
            "payout-worker",
            "payout-worker",
            metrics_port=free_port(),
            KASSA_SIGNER__KEY_DIR=str(keys),
            KASSA_SIGNER__PASSWORD_FILE=str(tmp_path / "signer-password"),
            KASSA_PAYOUTS__HOT_WALLET_LOW='{"ETH": "1.5"}',
            KASSA_PAYOUTS__WORKER__POLL_INTERVAL_SECONDS="0.2",
        )
        everyone = [worker, watcher, payouts]

        def worker_ran() -> bool:
            rounds = "kassa_worker_round_duration_seconds_count"
            return all(
                _has(worker, rounds, TOKEN, loop=loop)
                for loop in ("hold_sweep", "rate_refresh", "webhooks")
            ) and bool(
                _has(
                    worker,
                    "kassa_rate_source_failures_total",
                    TOKEN,
                    source="static",
                    symbol="ETH",
                    reason="unsupported_symbol",
                )
            )

        wait_for("the worker's rounds and rate failures in its metrics", worker_ran, everyone)
        # The token is wanted, as on the API's /metrics.
        with pytest.raises(httpx.HTTPStatusError) as refused:
            worker.scrape()
        assert refused.value.response.status_code == 401
        assert _has(worker, "kassa_worker_round_errors_total", TOKEN, loop="hold_sweep") is None

        wait_for(
            "the watcher's ticks in its metrics",
            lambda: bool(
                _has(watcher, "kassa_worker_round_duration_seconds_count", loop="watch_eth")
            ),
            everyone,
        )
        wait_for(
            "the payout worker's round and the hot wallet's balance in its metrics",
            lambda: (
                _has(payouts, "kassa_hot_wallet_balance", chain="eth", asset="ETH") == 0.0
                and bool(
                    _has(payouts, "kassa_worker_round_duration_seconds_count", loop="payout_round")
                )
            ),
            everyone,
        )
        assert _has(payouts, "kassa_hot_wallet_low_threshold", chain="eth", asset="ETH") == 1.5
        # Each process shows the loops it runs, and only those.
        assert not any(labels == (("loop", "payout_round"),) for _name, labels in watcher.scrape())
        for role in everyone:  # all at once: each takes seconds to wind down
            role.process.send_signal(signal.SIGTERM)
        codes = {role.name: role.stop() for role in everyone}
    assert codes == dict.fromkeys(codes, 0), "\n".join(r.output() for r in everyone)
