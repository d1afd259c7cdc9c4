"""`kassa health`: a role is healthy when the database answers at the code's migration head, and
a watcher only when it ticked recently and cleanly (what the compose file's checks ask)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kassa.chains.network import Chain
from kassa.cli import app
from kassa.clock import ManualClock
from kassa.config import load_settings
from kassa.db import Database
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("KASSA_DATA_DIR", "KASSA_DATABASE_URL", "KASSA_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "kassa.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--config", str(config), "health", *args])
    return result.exit_code, result.stderr


def _tick(config: Path, at: datetime) -> None:
    """A real watcher ticks once over a chain with nothing on it, at `at`."""
    database = Database.from_url(load_settings(config).db_url)
    try:
        clock = ManualClock(at)
        chain = FakeChain(Chain.BTC, at - timedelta(minutes=5), final_depth=1)
        chain.mine_empty(2)
        pricing = PricingService(database, clock, PricingSettings())
        Watcher(database, clock, chain, pricing, WatcherConfig(Chain.BTC)).tick()
    finally:
        database.dispose()


def test_the_schema_must_be_at_head_and_a_watcher_must_have_ticked_lately(config: Path) -> None:
    code, err = run(config)
    assert code == 1 and "this code needs" in err  # an empty database: not migrated
    assert run(config, "--role", "migrate")[0] == 0  # the migrator itself runs on it
    assert CliRunner().invoke(app, ["--config", str(config), "migrate"]).exit_code == 0

    for role in ("api", "worker", "payout-worker"):
        code, err = run(config, "--role", role)
        assert (code, err.strip()) == (0, f"healthy: {role}")
    code, err = run(config, "--role", "watch", "--chain", "btc")
    assert code == 1 and "has not ticked yet" in err

    _tick(config, datetime.now(UTC) - timedelta(hours=1))
    code, err = run(config, "--role", "watch", "--chain", "btc")
    assert code == 1 and "last ticked" in err
    _tick(config, datetime.now(UTC))
    code, err = run(config, "--role", "watch", "--chain", "btc")
    assert (code, err.strip()) == (0, "healthy: watch (btc)")


def test_bad_arguments_exit_2(config: Path) -> None:
    assert run(config, "--role", "watch")[0] == 2
    assert run(config, "--role", "watch", "--chain", "doge")[0] == 2
