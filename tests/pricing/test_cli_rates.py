"""`kassa rates show | refresh | at` against a throwaway SQLite data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kassa.cli import app


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("KASSA_DATA_DIR", "KASSA_DATABASE_URL", "KASSA_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "kassa.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        "[pricing]\n"
        "spread_bps = 25\n"
        'static_rates = { BTC = "64000", ETH = "3100", USDT = "1.0002" }\n'
    )
    return path


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_show_refresh_and_at(config: Path) -> None:
    assert run(config, "migrate")[0] == 0

    code, out, err = run(config, "rates", "show")
    assert code == 3
    assert "BTC   no rate: no BTC rate has been recorded yet" in out
    assert "--refresh" in err

    code, out, _err = run(config, "rates", "refresh")
    assert code == 3  # TRX has no configured static rate
    assert "TRX   no rate: no TRX rate: 0 healthy quote(s), 1 needed" in out
    assert "static: unsupported_symbol" in out

    code, out, _err = run(config, "rates", "show")
    lines = out.splitlines()
    btc = next(i for i, line in enumerate(lines) if line.startswith("BTC "))
    # 25 bps off the bid, onto the ask; the quote behind it on the next line.
    assert lines[btc].split()[:5] == ["BTC", "bid", "63840", "ask", "64160"]
    assert "spread 25 bps" in lines[btc]
    assert lines[btc + 1].split()[:5] == ["static", "bid", "64000", "ask", "64000"]
    assert lines[btc + 1].endswith("accepted")
    usdt = next(line for line in lines if line.startswith("USDT "))
    assert usdt.split()[:5] == ["USDT", "bid", "1", "ask", "1"] and "pegged at 1.00" in usdt

    sampled = lines[btc].split(" at ")[1][:20].replace(" ", "T")
    code, out, _err = run(config, "rates", "at", "BTC", sampled)
    assert code == 0, out
    assert out.split()[:5] == ["BTC", "bid", "63840", "ask", "64160"]

    code, _out, err = run(config, "rates", "at", "USDT-TRC20", "2020-01-01T00:00:00Z")
    assert code == 3
    assert "no USDT sample within 300 s" in err


def test_bad_arguments_are_refused(config: Path) -> None:
    run(config, "migrate")
    code, _out, err = run(config, "rates", "at", "DOGE", "2026-11-20T14:03:11Z")
    assert code == 2 and "not a priced asset" in err
    code, _out, err = run(config, "rates", "at", "BTC", "2026-11-20 14:03")
    assert code == 2 and "no UTC offset" in err


def test_unknown_source_in_settings_is_a_clear_error(tmp_path: Path, config: Path) -> None:
    config.write_text(config.read_text() + 'sources = ["coinbase", "nasdaq"]\n')
    code, _out, err = run(config, "rates", "show")
    assert code == 2
    assert "unknown rate source 'nasdaq'" in err
