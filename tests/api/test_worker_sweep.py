"""The hold-expiry worker releases every hold that is due, in batches, and nothing else."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.db import Database
from kassa.reports.settings import ReportSettings
from kassa.worker import run_worker, sweep_expired_holds

if TYPE_CHECKING:
    from tests.api.conftest import Api


def test_sweep_expires_due_holds_in_batches(api: Api) -> None:
    api.account("u1", funds="10")
    for seconds in (60, 60, 60, 3600):
        response = api.post(
            "/v1/accounts/u1/holds", {"amount": api.usd("1"), "expires_in_seconds": seconds}
        )
        assert response.status_code == 201
    assert api.available("u1") == "6.00"
    assert sweep_expired_holds(api.db, api.clock) == 0
    api.clock.advance(timedelta(seconds=60))
    assert sweep_expired_holds(api.db, api.clock, batch_size=2) == 3
    assert api.available("u1") == "9.00"
    assert sweep_expired_holds(api.db, api.clock) == 0
    api.clock.advance(timedelta(hours=1))
    assert sweep_expired_holds(api.db, api.clock) == 1
    assert api.available("u1") == "10.00"


def test_worker_loop_sweeps_until_stopped(db: Database, clock: ManualClock) -> None:
    stop = threading.Event()
    sweeper = threading.Thread(
        target=run_worker,
        args=(Settings(hold_sweep_interval_seconds=1, reports=ReportSettings(daily=False)), stop),
        kwargs={"database": db, "clock": clock},
    )
    sweeper.start()
    stop.set()
    sweeper.join(timeout=10)
    assert not sweeper.is_alive()
