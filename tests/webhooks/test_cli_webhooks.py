"""`kassa webhooks …` against a throwaway SQLite data directory: an operator creates an
endpoint (the secret printed once, to stdout), changes, disables, enables and rotates it, reads
the delivery log, redelivers an event, replays since a time and deletes it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kassa.cli import app
from kassa.clock import DatabaseClock
from kassa.config import load_settings
from kassa.db import Database
from kassa.events.outbox import record
from kassa.webhooks import deliveries


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("KASSA_DATA_DIR", "KASSA_DATABASE_URL", "KASSA_CONFIG_FILE", "KASSA_DEVNET"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "kassa.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_an_operator_manages_an_endpoint_from_the_shell(config: Path) -> None:
    assert run(config, "migrate")[0] == 0
    code, out, err = run(config, "webhooks", "create", "https://169.254.169.254/latest")
    assert code == 1 and "link-local" in err
    # The embedded default is the devnet, as for `kassa up`: a local receiver is fine.
    assert run(config, "webhooks", "create", "http://127.0.0.1:9/hook")[0] == 0

    code, out, err = run(
        config,
        "webhooks",
        "create",
        "https://hooks.example.com/k",
        "--event-type",
        "deposit.*",
        "--description",
        "billing",
    )
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("whsec_") and "shown only this once" in err
    code, out, _err = run(config, "webhooks", "list")
    [line] = [row for row in out.splitlines() if "hooks.example.com" in row]
    endpoint_id = line.split()[0]
    assert "deposit.*" in line and "enabled" in line and secret not in out

    assert run(config, "webhooks", "update", endpoint_id, "--all-events")[1].count("*") == 1
    assert run(config, "webhooks", "disable", endpoint_id, "--reason", "moving")[0] == 0
    assert "disabled: moving" in run(config, "webhooks", "show", endpoint_id)[1]
    assert run(config, "webhooks", "enable", endpoint_id)[0] == 0
    code, rotated, err = run(config, "webhooks", "rotate-secret", endpoint_id)
    assert code == 0 and rotated.strip().startswith("whsec_") and rotated.strip() != secret

    database = Database.from_url(load_settings(config).db_url)
    try:
        with database.transaction() as conn:
            now = DatabaseClock().now(conn)
            written = record(
                conn,
                type="deposit.credited",
                subject_kind="deposit",
                subject_id="d-1",
                data={},
                at=now,
            )
            deliveries.dispatch(conn, now=now, limit=10)
    finally:
        database.dispose()
    code, out, _err = run(config, "webhooks", "deliveries", "--endpoint", endpoint_id)
    assert code == 0 and written.public_id in out and "pending" in out
    delivery = out.split()[0]
    assert run(config, "webhooks", "attempts", delivery)[1].startswith(delivery)
    code, out, _err = run(config, "webhooks", "redeliver", written.public_id)
    assert code == 0 and out.strip().startswith("dlv_")
    code, out, _err = run(
        config, "webhooks", "replay", endpoint_id, "--since", "2020-01-01T00:00:00Z"
    )
    assert (code, out.strip()) == (0, "1")
    pending = run(
        config, "webhooks", "deliveries", "--status", "pending", "--endpoint", endpoint_id
    )
    assert len(pending[1].splitlines()) == 3

    assert run(config, "webhooks", "delete", endpoint_id)[0] == 0
    assert "hooks.example.com" not in run(config, "webhooks", "list")[1]
    code, _out, err = run(config, "webhooks", "show", endpoint_id)
    assert code == 1 and "does not exist" in err
    assert run(config, "webhooks", "show", "not-a-uuid")[0] == 2
