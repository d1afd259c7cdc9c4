"""The worker roles' own metrics listeners (docs/operations.md, Metrics of the worker
processes): a real `kassa worker` process on PostgreSQL with ``--metrics-port``, scraped. The
watcher's and the payout worker's series (their rounds, the hot wallet's balance as the node
reports it) are read from the processes tests/deploy/test_graceful_stop.py runs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.conftest import DatabaseFactory
from tests.deploy.roles import Role, base_env, running, wait_for

from kassa_dev.devnet.testing import free_port

TOKEN = "metrics-token-0123456789"  # noqa: S105 - a test's own scrape token


def _has(role: Role, name: str, token: str | None = None, **labels: str) -> float | None:
    """The sample's value in a scrape of ``role``, or None while it is not there."""
    return role.scrape(token).get((name, tuple(sorted(labels.items()))))


@pytest.mark.postgres
def test_the_worker_serves_its_metrics(pg_databases: DatabaseFactory, tmp_path: Path) -> None:
    database = pg_databases.new(pool_size=1)
    env = base_env(database.engine.url.render_as_string(hide_password=False), tmp_path / "data")
    env |= {
        "KASSA_HOLD_SWEEP_INTERVAL_SECONDS": "1",
        # Static rates for BTC only: the source answers "unsupported_symbol" for the others.
        "KASSA_PRICING__STATIC_RATES": '{"BTC": "60000"}',
        "KASSA_PRICING__REFRESH_INTERVAL_SECONDS": "1",
    }
    with running(env, tmp_path) as roles:
        worker = roles.start(
            "worker", "worker", metrics_port=free_port(), KASSA_METRICS__TOKEN=TOKEN
        )
        everyone = [worker]

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

        # A process shows the loops it runs, and only those.
        assert not any(("loop", "watch_eth") in labels for _name, labels in worker.scrape(TOKEN))
        assert worker.stop() == 0, worker.output()
