"""Safe defaults (issue 13, items 8 and 11): development features are off unless the devnet is
chosen, the bootstrap key is printed to a terminal only, the books are created private whatever
the umask, and `--config` is accepted after the command's name too."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kassa.cli import app, hoist_config
from kassa.cli.run import announce_bootstrap_key, choose_devnet
from kassa.config import Settings, load_settings
from kassa.db import Database


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KASSA_"):
            monkeypatch.delenv(name)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that masks nothing: modes must come from the code, not from the umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_devnet_is_off_by_default() -> None:
    assert not load_settings().devnet
    assert not Settings().devnet


def test_kassa_up_chooses_the_devnet_only_on_the_embedded_database(
    capsys: pytest.CaptureFixture[str],
) -> None:
    embedded = choose_devnet(load_settings())
    assert embedded.devnet is True
    assert "devnet is not set" in capsys.readouterr().err

    configured = choose_devnet(load_settings(database_url="postgresql+psycopg://h/kassa"))
    assert configured.devnet is False
    assert choose_devnet(load_settings(devnet=False)).devnet is False
    assert capsys.readouterr().err == ""


def test_the_bootstrap_key_is_printed_to_a_terminal_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "bootstrap-admin.key"
    announce_bootstrap_key("kassa_secret", key_file, interactive=False)
    logged = capsys.readouterr()
    assert "kassa_secret" not in logged.out + logged.err
    assert str(key_file) in logged.err

    announce_bootstrap_key("kassa_secret", key_file, interactive=True)
    assert capsys.readouterr().out.strip() == "kassa_secret"


@pytest.mark.usefixtures("open_umask")
def test_the_sqlite_file_and_its_directory_are_private(tmp_path: Path) -> None:
    data = tmp_path / "state" / "data"
    database = Database.from_url(Settings(data_dir=data).db_url)
    try:
        with database.transaction() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        # While the database is open, with its write-ahead log and shared memory files.
        for name in ("kassa.sqlite3", "kassa.sqlite3-wal", "kassa.sqlite3-shm"):
            assert mode(data / name) == 0o600, name
    finally:
        database.dispose()
    assert mode(data) == 0o700
    assert mode(data.parent) == 0o700


@pytest.mark.usefixtures("open_umask")
def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    database = Database.from_url(f"sqlite:///{tmp_path / 'kassa.sqlite3'}")
    database.dispose()
    assert mode(tmp_path) == 0o755
    assert mode(tmp_path / "kassa.sqlite3") == 0o600


def test_config_is_accepted_after_the_command(tmp_path: Path) -> None:
    config = tmp_path / "kassa.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    for args in (
        ["--config", str(config), "migrate"],
        ["migrate", "--config", str(config)],
        ["migrate", f"--config={config}"],
        ["keys", "list", "--config", str(config)],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, (args, result.stderr)
    assert (tmp_path / "data" / "kassa.sqlite3").exists()
    result = CliRunner().invoke(app, ["migrate", "--config", str(tmp_path / "absent.toml")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_hoist_config_leaves_everything_else_in_order() -> None:
    assert hoist_config(["up", "--port", "1", "--config", "f"]) == [
        "--config",
        "f",
        "up",
        "--port",
        "1",
    ]
    assert hoist_config(["bench", "--", "--config", "f"]) == ["bench", "--", "--config", "f"]
    assert hoist_config(["up", "--config"]) == ["up", "--config"]
