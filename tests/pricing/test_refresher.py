"""The worker's rate refresher: it stores rates on its interval and survives failures."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.db import Database
from kassa.pricing import history
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService, RefreshResult
from kassa.pricing.settings import PricingSettings
from kassa.reports.settings import ReportSettings
from kassa.worker import refresh_rates_forever, run_worker


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def samples(db: Database) -> int:
    with db.transaction() as conn:
        return history.count_samples(conn, Symbol.BTC)


def test_the_worker_refreshes_rates_until_stopped(db: Database, clock: ManualClock) -> None:
    stop = threading.Event()
    settings = Settings(
        pricing=PricingSettings(refresh_interval_seconds=0.05),
        reports=ReportSettings(daily=False),  # no daily files in the working directory
    )
    worker = threading.Thread(
        target=run_worker, args=(settings, stop), kwargs={"database": db, "clock": clock}
    )
    worker.start()
    try:
        wait_for(lambda: samples(db) >= 2)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()


class Flaky(PricingService):
    """The real service whose first refresh blows up, as a database outage would."""

    calls = 0

    def refresh(self, symbols: object = tuple(Symbol)) -> RefreshResult:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("database went away")
        return super().refresh()


def test_a_failed_refresh_is_logged_and_retried(
    db: Database, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    pricing = Flaky(db, clock, PricingSettings())
    stop = threading.Event()
    loop = threading.Thread(target=refresh_rates_forever, args=(pricing, 0.05, stop))
    loop.start()
    try:
        wait_for(lambda: samples(db) >= 1)
    finally:
        stop.set()
        loop.join(timeout=10)
    assert "rate refresh failed" in caplog.text
    clock.advance(timedelta(seconds=1))
    with db.transaction() as conn:
        assert pricing.current(conn, Symbol.BTC, clock.now()).bid > 0
