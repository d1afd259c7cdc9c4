"""`kassa reports …` on the seeded history (SQLite): CSV to stdout with progress on stderr,
JSON and the HTML file to --output, the daily files, and a bad period refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from kassa.cli import app

if TYPE_CHECKING:
    from conftest import History  # type: ignore[import-not-found]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_reports_commands(
    finance_history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KASSA_DATA_DIR", "KASSA_DATABASE_URL", "KASSA_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "kassa.toml"
    url = finance_history.db.engine.url.render_as_string(hide_password=False)
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\ndatabase_url = "{url}"\n'
        '[reports]\ntime_zone = "Europe/Berlin"\n'
    )

    def run(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, ["--config", str(config), "reports", *args])
        return result.exit_code, result.stdout, result.stderr

    code, out, err = run("fees", "--period", "2026-11")
    assert code == 0, err
    assert out.splitlines()[1].startswith("btc,withdrawal,1,5.00,5.00,")
    assert "fees: 2 rows in" in err

    code, out, err = run("statement", "c1", "--period", "2026-11", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["rows"][-1]["balance"] == "58.35"

    code, out, err = run("trial-balance", "--at", "2026-11-15T00:00:00Z", "--format", "table")
    assert code == 0, err
    assert "house:revenue:USD" in out

    page = tmp_path / "november.html"
    code, _out, err = run("html", "--period", "2026-11", "--output", str(page))
    assert code == 0, err
    assert "chart-solvency" in page.read_text()

    code, out, err = run("daily", "--day", "2026-11-12")
    assert code == 0, err
    assert (tmp_path / "data" / "reports" / "activity-2026-11-12.csv").is_file()

    code, _out, err = run("activity", "--period", "2026-02-30")
    assert code == 2
    assert "is not a day" in err
