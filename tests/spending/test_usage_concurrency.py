"""Usage batches racing each other (DESIGN §3 "a user's available balance never goes below zero";
§6 "idempotent per event id"): many API processes share one PostgreSQL, so racing batches must
end as if they had queued — no overdraft, each event id charged once, no deadlock. SQLite
serialises writers; the balance race runs there too.

Each race releases its threads together with a `threading.Barrier`, after warming the pool so
that no thread is still connecting when the others start.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import func, select

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.errors import KassaError
from kassa.ledger.errors import InsufficientFunds
from kassa.money import USD, Money
from kassa.spending.tables import usage_event
from kassa.spending.usage import EventStatus, UsageBatch, UsageEvent

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory
    from tests.spending.conftest import Shop

T = TypeVar("T")


def usd(dollars: str) -> Money:
    return Money.parse(dollars, USD)


def event(event_id: str, dollars: str) -> UsageEvent:
    return UsageEvent(event_id, usd(dollars), "GET /v1/search")


def at_once(db: Database, n: int, work: Callable[[int], T]) -> list[T | BaseException]:
    """Run `work(0) … work(n-1)` in n threads released together; each result or exception."""
    connections = [db.engine.connect() for _ in range(n)]
    for connection in connections:
        connection.close()
    barrier = threading.Barrier(n)
    results: list[T | BaseException] = [RuntimeError("did not finish")] * n

    def run(i: int) -> None:
        barrier.wait(timeout=60)
        try:
            results[i] = work(i)
        except BaseException as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,), name=f"race-{i}") for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    return results


def tally(results: Sequence[object]) -> Counter[str]:
    return Counter(
        "ok"
        if isinstance(r, UsageBatch)
        else r.code
        if isinstance(r, KassaError)
        else type(r).__name__
        for r in results
    )


def test_racing_batches_on_one_balance_never_overdraw(
    databases: DatabaseFactory, shop_class: type[Shop], clock: ManualClock
) -> None:
    shop = shop_class(databases.new(pool_size=30), clock)
    alice = shop.customer("10.00")

    # Twelve batches of five $0.50 events ($2.50 each) against $10.00: exactly four fit.
    results = at_once(
        shop.db,
        12,
        lambda i: shop.usage(alice, [event(f"b{i}-e{j}", "0.50") for j in range(5)]),
    )

    assert tally(results) == {"ok": 4, InsufficientFunds.code: 8}
    assert shop.available(alice) == usd("0")
    assert shop.revenue_posted() == usd("10.00")
    assert shop.count(usage_event) == 20
    assert shop.usage_transactions() == [2, 2, 2, 2]


def test_one_event_id_in_racing_batches_is_charged_once(
    pg_databases: DatabaseFactory, shop_class: type[Shop], clock: ManualClock
) -> None:
    shop = shop_class(pg_databases.new(pool_size=30), clock)
    alice = shop.customer("100.00")

    # Every batch carries the shared event and one of its own.
    results = at_once(
        shop.db,
        16,
        lambda i: shop.usage(alice, [event("shared", "1.00"), event(f"own-{i}", "0.10")]),
    )

    assert tally(results) == {"ok": 16}
    shared = Counter(dict(r.events)["shared"] for r in results if isinstance(r, UsageBatch))
    assert shared == {EventStatus.CHARGED: 1, EventStatus.DUPLICATE: 15}
    assert shop.available(alice) == usd("97.40")
    with shop.db.transaction() as conn:
        rows = conn.execute(
            select(func.count()).select_from(usage_event).where(usage_event.c.event_id == "shared")
        ).scalar_one()
    assert rows == 1


def test_batches_sharing_ids_in_opposite_orders_do_not_deadlock(
    pg_databases: DatabaseFactory, shop_class: type[Shop], clock: ManualClock
) -> None:
    shop = shop_class(pg_databases.new(pool_size=30), clock)
    alice = shop.customer("1000.00")
    ids = [f"call-{n:04d}" for n in range(1000)]

    # Half the threads list the ids forwards, half backwards: inserted in request order, two
    # such batches would each hold an index entry the other waits for.
    def batch(i: int) -> UsageBatch:
        ordered = ids if i % 2 else list(reversed(ids))
        return shop.usage(alice, [event(e, "0.01") for e in ordered])

    results = at_once(shop.db, 8, batch)

    assert tally(results) == {"ok": 8}
    assert sum(r.charged_events for r in results if isinstance(r, UsageBatch)) == 1000
    assert shop.available(alice) == usd("990.00")
