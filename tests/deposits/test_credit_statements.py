"""What crediting a block's deposits costs in statements, on both databases: the watcher's
throughput is mostly its crediting (docs/benchmarks.md, deposit watchers), so the count per
credit is held where it is. Before the batch-level reads (the deposits, their owners and their
addresses read once for the batch, the rate lock handed to the event's view, one statement per
event and per rate lock, the balance read again only for a frozen account) a credit took 21
statements on PostgreSQL and 24 on SQLite, recording included; 11 and 16.5 after."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from sqlalchemy import event
from tests.deposits.test_watcher import make_world

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits.model import DepositStatus

DEPOSITS = 12
# Recording and crediting one deposit, house and customer accounts already open.
MOST_PER_CREDIT = {"postgresql": 12, "sqlite": 17}


def test_crediting_a_block_of_deposits_costs_a_bounded_number_of_statements(
    db: Database, clock: ManualClock
) -> None:
    world = make_world(db, clock)
    world.chain.mine([world.pay(100_000 + n, txid=f"{n:064x}") for n in range(DEPOSITS)])
    world.chain.mine_empty(3)
    seen: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen[re.sub(r"\s+", " ", statement).strip()[:60]] += 1

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        report = world.watcher.tick()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(report.credited) == DEPOSITS
    assert all(d.status is DepositStatus.CREDITED for d in world.deposits())
    per_credit = sum(seen.values()) / DEPOSITS
    assert per_credit <= MOST_PER_CREDIT[db.engine.dialect.name], seen.most_common(12)
    # The batch-level lookups stay batch-level: none of these runs once per deposit.
    per_deposit = [s for s, n in seen.items() if n >= DEPOSITS]
    assert not [s for s in per_deposit if s.startswith("SELECT max(event.seq)")]
    assert not [s for s in per_deposit if s.startswith("SAVEPOINT")]
    assert not [s for s in per_deposit if s.startswith("SELECT rate_lock.")]
    assert not [s for s in per_deposit if s.startswith("SELECT deposit_address.")]
    assert not [s for s in per_deposit if s.startswith("SELECT customer_account.")]
