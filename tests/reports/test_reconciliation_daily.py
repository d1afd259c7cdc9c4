"""`kassa reconcile` and the worker's daily reconciliation, on a throwaway SQLite data directory
(no chain configured: the ledger and records legs run, the chains are left out and said so)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from kassa.cli import app
from kassa.clock import ManualClock
from kassa.config import load_settings
from kassa.db import Database
from kassa.ledger.tables import ledger_account
from kassa.reports.reconciliation.daily import closed_day, run_if_due
from kassa.reports.reconciliation.funding import FUNDING_FILE, book_funding_file
from kassa.reports.reconciliation.run import reconciler_for
from kassa.worker import reconcile_daily_forever


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("KASSA_DATA_DIR", "KASSA_DATABASE_URL", "KASSA_CONFIG_FILE", "KASSA_DEVNET"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "kassa.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\ndevnet = false\n'
        '[reconciliation]\nat = "00:30:00"\ncheck_interval_seconds = 0.05\n'
    )
    return path


def run(config: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_reconcile_books_funding_once_and_writes_its_report(config: Path, tmp_path: Path) -> None:
    assert run(config, "migrate")[0] == 0
    for _ in range(2):  # booked once per funding transaction
        code, _out, err = run(config, "reconcile", "fund-hot", "1.5", "ETH", "--txid", "0xabc")
        assert code == 0, err
    settings = load_settings(config)
    database = Database.from_url(settings.db_url)
    try:
        with database.transaction() as conn:
            hot = conn.execute(
                select(ledger_account.c.debits_posted).where(
                    ledger_account.c.code == "wallet:eth-hot:ETH"
                )
            ).scalar_one()
        assert int(hot) == 15 * 10**17
    finally:
        database.dispose()

    code, out, err = run(config, "reconcile", "--json", "--out", str(tmp_path / "out"))
    assert code == 0, err
    report = json.loads(out)
    assert report["breaks"] == {"new": 0, "persisting": 0, "resolved": 0}
    assert report["checked"] == ["ledger:*", "records:*"]
    assert "ledger: postings" in err  # progress
    [written] = sorted((tmp_path / "out").glob("reconciliation-*.json"))
    assert json.loads(written.read_text())["run_id"] == report["run_id"]
    assert written.with_suffix(".csv").read_text().startswith("class,leg,chain,asset,object_id")

    assert run(config, "reconcile", "fund-hot", "1", "USD", "--txid", "x")[0] == 2


def test_the_worker_reconciles_the_day_before_once(config: Path) -> None:
    assert run(config, "migrate")[0] == 0
    at = clock_time(0, 30)
    assert str(closed_day(datetime(2026, 12, 7, 0, 29, tzinfo=UTC), at)) == "2026-12-05"
    assert str(closed_day(datetime(2026, 12, 7, 0, 30, tzinfo=UTC), at)) == "2026-12-06"

    settings = load_settings(config)
    database = Database.from_url(settings.db_url)
    clock = ManualClock(datetime(2026, 12, 7, 6, 0, tzinfo=UTC))
    stop = threading.Event()
    worker = threading.Thread(
        target=reconcile_daily_forever, args=(settings, database, clock, stop), daemon=True
    )
    worker.start()
    try:
        report = settings.data_dir / "reconciliation-2026-12-06.json"
        deadline = time.monotonic() + 30
        while not report.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert json.loads(report.read_text())["day"] == "2026-12-06"
        assert (settings.data_dir / "reconciliation-2026-12-06.csv").exists()
    finally:
        stop.set()
        worker.join(timeout=10)
    try:
        again = run_if_due(
            lambda: reconciler_for(settings.chains, database, clock),
            settings.data_dir,
            clock.now(),
            at,
        )
        assert again is None  # the day is done
    finally:
        database.dispose()


def test_recorded_funding_is_booked_once(config: Path, tmp_path: Path) -> None:
    assert run(config, "migrate")[0] == 0
    record = tmp_path / FUNDING_FILE
    record.write_text(
        '{"asset": "TRX", "amount": "100000", "txid": "aa"}\n'
        '{"asset": "USDT-TRC20", "amount": "1000000", "txid": "bb"}\n'
    )
    settings = load_settings(config)
    database = Database.from_url(settings.db_url)
    clock = ManualClock(datetime(2026, 12, 7, 6, 0, tzinfo=UTC))
    try:
        for _ in range(2):  # `kassa up` books the file at every start
            with database.transaction() as conn:
                assert book_funding_file(conn, record, actor="devnet", now=clock.now()) == 2
        with database.transaction() as conn:
            sums = dict(
                conn.execute(
                    select(ledger_account.c.code, ledger_account.c.debits_posted).where(
                        ledger_account.c.code.like("wallet:tron-hot:%")
                    )
                ).all()
            )
        assert {code: int(value) for code, value in sums.items()} == {
            "wallet:tron-hot:TRX": 100_000 * 10**6,
            "wallet:tron-hot:USDT-TRC20": 1_000_000 * 10**6,
        }
    finally:
        database.dispose()
