"""Settings: environment over file over defaults; the database URL picks the backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kassa.config import Settings, load_settings
from kassa.db import Database


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KASSA_"):
            monkeypatch.delenv(name)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.hold_sweep_interval_seconds == 15
    assert settings.database_url is None
    assert settings.db_url == f"sqlite:///{Path('data/kassa.sqlite3').resolve()}"


def test_file_overrides_defaults(tmp_path: Path) -> None:
    config = write(tmp_path / "kassa.toml", "port = 9100\nhost = '0.0.0.0'\n")
    settings = load_settings(config)
    assert settings.port == 9100
    assert settings.host == "0.0.0.0"  # noqa: S104 - a value read back, nothing listens


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "kassa.toml", "port = 9100\nhold_sweep_interval_seconds = 5\n")
    monkeypatch.setenv("KASSA_PORT", "9200")
    settings = load_settings(config)
    assert settings.port == 9200
    assert settings.hold_sweep_interval_seconds == 5


def test_cli_overrides_environment_and_none_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KASSA_PORT", "9200")
    assert load_settings(port=9300).port == 9300
    assert load_settings(port=None).port == 9200


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(tmp_path / "kassa.toml", "port = 9100\n")
    monkeypatch.setenv("KASSA_CONFIG_FILE", str(config))
    assert load_settings().port == 9100


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "absent.toml")


def test_unknown_file_setting_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path / "kassa.toml", "prot = 9100\n")
    with pytest.raises(ValueError, match="prot"):
        load_settings(config)


def test_default_database_is_sqlite_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "state")
    assert settings.db_url == f"sqlite:///{(tmp_path / 'state' / 'kassa.sqlite3').resolve()}"
    database = Database.from_url(settings.db_url)
    try:
        assert database.dialect == "sqlite"
    finally:
        database.dispose()


def test_postgres_url_selects_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://kassa@127.0.0.1:5432/kassa"
    monkeypatch.setenv("KASSA_DATABASE_URL", url)
    settings = load_settings()
    assert settings.db_url == url
    database = Database.from_url(settings.db_url)  # creating the engine does not connect
    try:
        assert database.dialect == "postgresql"
    finally:
        database.dispose()
