"""`kassa disputes open|list|show|resolve` against a throwaway SQLite data directory: an
operator disputes a fulfilled activation, the price comes back on acceptance, and refusals end
the command with their reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kassa.accounts import service as accounts
from kassa.cli import app
from kassa.clock import DatabaseClock
from kassa.config import load_settings
from kassa.db import Database
from kassa.ledger.accounts import get_balance
from kassa.ledger.transfers import adjust
from kassa.money import USD, Money
from kassa.spending import activations


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


def _fulfilled_activation(database: Database) -> tuple[int, str]:
    """Account u1 with $10, of which a $4 activation was delivered."""
    with database.transaction() as conn:
        now = DatabaseClock().now(conn)
        account = accounts.create(conn, external_id="u1", now=now, request=None)
        adjust(
            conn,
            account_id=account.ledger_account_id,
            amount=Money.parse("10", USD),
            direction="credit",
            reason="test funds",
            actor="test",
            now=now,
            request=None,
        )
        price = Money.parse("4", USD)
        made = activations.reserve(conn, account, price=price, now=now, request=None)
        activations.fulfil(conn, account, made.id, now=now, request=None)
    return account.ledger_account_id, str(made.id)


def test_an_operator_disputes_an_activation_from_the_shell(config: Path) -> None:
    run(config, "migrate")
    database = Database.from_url(load_settings(config).db_url)
    try:
        ledger_id, activation_id = _fulfilled_activation(database)
        code, out, err = run(
            config, "disputes", "open", "u1", "activation", activation_id, "--reason", "no code"
        )
        assert code == 0, err
        dispute_id = out.strip()
        assert "open" in run(config, "disputes", "list", "--status", "open")[1]
        code, _out, err = run(
            config, "disputes", "resolve", dispute_id, "chargeback", "--note", "x"
        )
        assert code == 1
        assert "resolved rejected, accepted, not chargeback" in err

        code, out, err = run(config, "disputes", "resolve", dispute_id, "accepted", "--note", "ok")
        assert (code, out.strip()) == (0, "accepted"), err
        with database.transaction() as conn:
            assert get_balance(conn, ledger_id).available.format() == "10.00"
        code, out, _err = run(config, "disputes", "show", dispute_id)
        assert "open → accepted" in out and "ledger entry" in out
        code, _out, err = run(config, "disputes", "resolve", dispute_id, "rejected", "--note", "x")
        assert code == 1 and "already resolved" in err
    finally:
        database.dispose()
