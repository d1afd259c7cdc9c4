"""The `kassa` command against a throwaway SQLite data directory."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from kassa.accounts import service as accounts
from kassa.apikeys import service as apikeys
from kassa.cli import app
from kassa.cli.run import BOOTSTRAP_KEY_FILE, bootstrap_admin
from kassa.clock import DatabaseClock
from kassa.config import load_settings
from kassa.db import Database
from kassa.db.migrate import head_revision


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("KASSA_DATA_DIR", "KASSA_DATABASE_URL", "KASSA_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "kassa.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_migrate_then_manage_keys(config: Path) -> None:
    code, out, _err = run(config, "migrate")
    assert code == 0
    assert out.strip() == head_revision()

    code, out, err = run(config, "keys", "create", "--name", "shop", "--scope", "accounts:read")
    assert code == 0, err
    token = out.strip()
    assert token.startswith("kassa_")
    assert "shown only this once" in err
    prefix = token[len("kassa_") :][:12]

    code, out, _err = run(config, "keys", "list")
    assert code == 0
    assert prefix in out
    assert "active" in out
    assert token not in out

    code, _out, _err = run(config, "keys", "revoke", prefix)
    assert code == 0
    assert "revoked" in run(config, "keys", "list")[1]


def test_unknown_scope_is_refused_clearly(config: Path) -> None:
    run(config, "migrate")
    code, out, err = run(config, "keys", "create", "--name", "x", "--scope", "acounts:read")
    assert code == 1
    assert out == ""
    assert "unknown scope 'acounts:read'" in err


def test_key_bound_to_an_account(config: Path) -> None:
    run(config, "migrate")
    settings = load_settings(config)
    database = Database.from_url(settings.db_url)
    try:
        with database.transaction() as conn:
            account = accounts.create(
                conn, external_id="u1", now=DatabaseClock().now(conn), request=None
            )
        code, out, err = run(
            config, "keys", "create", "--name", "u1", "--scope", "accounts:read", "--account", "u1"
        )
        assert code == 0, err
        with database.transaction() as conn:
            assert apikeys.authenticate(conn, out.strip()).customer_account_id == account.id
        assert "u1" in run(config, "keys", "list")[1]
        code, _out, err = run(
            config, "keys", "create", "--name", "x", "--scope", "admin", "--account", "u1"
        )
        assert code == 1
        assert "admin key cannot be bound" in err
        code, _out, err = run(
            config, "keys", "create", "--name", "x", "--scope", "accounts:read", "--account", "u9"
        )
        assert code == 1
        assert "no account with external id 'u9'" in err
    finally:
        database.dispose()


def test_serve_refuses_an_unmigrated_database(config: Path) -> None:
    code, _out, err = run(config, "serve")
    assert code == 1
    assert "run `kassa migrate` first" in err


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    code, _out, err = run(tmp_path / "absent.toml", "migrate")
    assert code == 2
    assert "does not exist" in err


def test_bootstrap_admin_key_is_created_once_and_saved_privately(config: Path) -> None:
    run(config, "migrate")
    settings = load_settings(config)
    database = Database.from_url(settings.db_url)
    try:
        token = bootstrap_admin(settings, database)
        assert token is not None
        key_file = settings.data_dir / BOOTSTRAP_KEY_FILE
        assert key_file.read_text().strip() == token
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        with database.transaction() as conn:
            key = apikeys.authenticate(conn, token)
        assert key.name == "bootstrap-admin"
        assert key.allows(apikeys.Scope.ACCOUNTS_WRITE)
        assert bootstrap_admin(settings, database) is None
    finally:
        database.dispose()


def test_bench_ledger_hands_its_arguments_over(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[list[str] | None] = []

    def main(argv: list[str] | None = None) -> int:
        received.append(argv)
        return 3

    fake = ModuleType("kassa_dev.bench.ledger")
    fake.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kassa_dev.bench.ledger", fake)
    code, _out, _err = run(config, "bench", "ledger", "--db", "sqlite", "--seconds", "1")
    assert code == 3
    assert received == [["--db", "sqlite", "--seconds", "1"]]
