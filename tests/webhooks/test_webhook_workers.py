"""Delivery workers under crashes and concurrency.

* A real `kassa worker` process is killed (SIGKILL) while its POST is at the receiver, before it
  could record the answer; a second process, once the lease lapsed, sends the delivery again
  with the same ``webhook-id``: at least once, a duplicate only after a crash.
* Two senders on PostgreSQL share 400 events for two endpoints: every event reaches each
  endpoint exactly once (SKIP LOCKED claims and fan-out never overlap). 800 deliveries take 16
  claims of `batch_size` 50, so each sender claims while the other holds a batch, as with more;
  `kassa bench webhooks` (tests/bench/test_webhooks_bench.py) is the high-volume run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from kassa.clock import DatabaseClock
from kassa.db import Database
from kassa.events.outbox import record
from kassa.webhooks import deliveries
from kassa.webhooks.deliveries import DeliveryStatus
from kassa.webhooks.sender import Sender
from kassa.webhooks.settings import WebhookSettings
from kassa.webhooks.tables import webhook_attempt, webhook_delivery

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory
    from tests.webhooks.conftest import Kit

pytestmark = pytest.mark.slow

LEASE = 8
"""The sender's lease on a batch of one: at least the attempt's 3 s deadline plus 5 s."""


def _worker(kit: Kit, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KASSA_DATA_DIR": str(tmp_path),
        "KASSA_DATABASE_URL": kit.db.engine.url.render_as_string(hide_password=False),
        "KASSA_DEVNET": "false",
        "KASSA_WEBHOOKS__ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "KASSA_WEBHOOKS__LEASE_SECONDS": str(LEASE),
        "KASSA_WEBHOOKS__TIMEOUT_SECONDS": "3",
        "KASSA_WEBHOOKS__POLL_INTERVAL_SECONDS": "0.1",
        "KASSA_HOLD_SWEEP_INTERVAL_SECONDS": "3600",
        # Only the test's event: no daily report or reconciliation (they raise events too).
        "KASSA_REPORTS__DAILY": "false",
        "KASSA_RECONCILIATION__DAILY": "false",
    }
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own console script, fixed argv
            [str(Path(sys.executable).with_name("kassa")), "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def _wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
@pytest.mark.slow(seconds=10)
def test_a_worker_killed_before_recording_is_replaced_and_the_id_repeats(
    kit: Kit, tmp_path: Path
) -> None:
    kit.endpoint()
    hold = threading.Event()
    kit.receiver.script("/hook", hold=hold)
    written = kit.event()  # the state change committed; nothing delivered yet

    first = _worker(kit, tmp_path, "first")
    try:
        assert kit.receiver.arrived.wait(60), "the worker never delivered"
        first.send_signal(signal.SIGKILL)  # the POST is at the receiver, unrecorded
        first.wait(10)
    finally:
        hold.set()
        if first.poll() is None:
            first.kill()
    kit.receiver.script("/hook")
    with kit.db.transaction() as conn:
        [pending] = deliveries.listing(conn)
    assert (pending.status, pending.attempts) == (DeliveryStatus.PENDING, 0)

    second = _worker(kit, tmp_path, "second")
    try:
        _wait_for(lambda: len(kit.receiver.received) == 2, LEASE + 30)
        _wait_for(lambda: _statuses(kit) == [DeliveryStatus.SUCCEEDED], 10)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    ids = [r.msg_id for r in kit.receiver.received]
    assert ids == [written.public_id] * 2
    assert kit.receiver.received[0].body == kit.receiver.received[1].body
    assert all(r.verified_by for r in kit.receiver.received)


def _statuses(kit: Kit) -> list[DeliveryStatus]:
    with kit.db.transaction() as conn:
        return [d.status for d in deliveries.listing(conn)]


EVENTS = 400


@pytest.mark.slow(seconds=6)
def test_two_workers_deliver_each_event_to_each_endpoint_once(
    pg_databases: DatabaseFactory, kit_on: Callable[[Database], Kit]
) -> None:
    kit = kit_on(pg_databases.new(pool_size=6))
    kit.endpoint("/a")
    kit.endpoint("/b")
    with kit.db.transaction() as conn:
        for n in range(EVENTS):
            record(
                conn,
                type="deposit.credited",
                subject_kind="deposit",
                subject_id=f"d-{n}",
                data={"n": n},
                at=kit.clock.now(),
            )
    settings = WebhookSettings(batch_size=50, concurrency=4).with_loopback()
    workers = [Sender(kit.db, DatabaseClock(), settings, worker_id=f"w{i}") for i in (1, 2)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run_forever, args=(stop,)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        _wait_for(lambda: len(kit.receiver.received) >= 2 * EVENTS, 120)
        _wait_for(lambda: _done(kit) == 2 * EVENTS, 30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    seen = Counter((r.path, r.msg_id) for r in kit.receiver.received)
    assert len(seen) == 2 * EVENTS and set(seen.values()) == {1}
    assert all(r.verified_by for r in kit.receiver.received)
    with kit.db.transaction() as conn:
        workers_used = conn.execute(
            select(webhook_attempt.c.worker, func.count()).group_by(webhook_attempt.c.worker)
        ).all()
    assert {w for w, _n in workers_used} == {"w1", "w2"}


def _done(kit: Kit) -> int:
    with kit.db.transaction() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    webhook_delivery.c.status == DeliveryStatus.SUCCEEDED.value
                )
            ).scalar_one()
        )
