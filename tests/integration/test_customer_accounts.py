"""Customer accounts: one per external id, even when creates race."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from kassa.accounts import service as customers
from kassa.accounts.errors import CustomerAccountExists
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.ledger.idempotency import IdempotencyKey, Request

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory


def test_create_then_get_by_external_id(db: Database, clock: ManualClock) -> None:
    with db.transaction() as conn:
        created = customers.create(conn, external_id="user-42", now=clock.now(), request=None)
    with db.transaction() as conn:
        assert customers.get_by_external_id(conn, "user-42") == created


def test_second_create_with_same_external_id_is_refused(db: Database, clock: ManualClock) -> None:
    with db.transaction() as conn:
        customers.create(conn, external_id="user-42", now=clock.now(), request=None)
    with pytest.raises(CustomerAccountExists), db.transaction() as conn:
        customers.create(conn, external_id="user-42", now=clock.now(), request=None)


def test_concurrent_creates_of_one_external_id_make_one_account(
    pg_databases: DatabaseFactory, clock: ManualClock
) -> None:
    db = pg_databases.new(pool_size=12)
    workers = 10
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        request = Request.of(IdempotencyKey("test", f"create-{n}"), "create", {"n": n})
        barrier.wait()
        try:
            with db.transaction() as conn:
                customers.create(conn, external_id="racer", now=clock.now(), request=request)
            outcome = "created"
        except CustomerAccountExists:
            outcome = "exists"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created"] + ["exists"] * (workers - 1)
    with db.engine.connect() as conn:
        user_accounts = conn.exec_driver_sql(
            "SELECT count(*) FROM ledger_account WHERE kind = 'user'"
        ).scalar_one()
    assert user_accounts == 1
