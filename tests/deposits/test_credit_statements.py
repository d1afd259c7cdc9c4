"""What crediting a block's deposits costs in statements, on both databases: the watcher's
throughput is mostly its crediting (docs/benchmarks.md, deposit watchers), so the count per
credit is held where it is. Before the batch-level reads (the deposits, their owners and their
addresses read once for the batch, the rate lock handed to the event's view, one statement per
event and per rate lock, the owners' balances read with their locks, and read again only for
a frozen account) a credit took 21 statements on PostgreSQL and 24 on SQLite, recording
included; 9.2 and 14.5 after. With the deposit writes of a batch held back and sent together
(`records.Deferred`: one multi-row INSERT or one executemany per kind of write, which psycopg
pipelines) and the batch's ledger entries in one pipeline (`transfers.post_many`), the database
calls per credit are 1.6 on PostgreSQL (all of them once per batch) and 7.75 on SQLite (the
portable journal's own statements, which cost no round trip). And a credit still lifts a
freeze, and says so."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select
from tests.deposits.test_watcher import make_world

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits.model import DepositStatus
from kassa.events import outbox
from kassa.events.tables import event
from kassa.ledger import house
from kassa.ledger.accounts import get_balance
from kassa.ledger.transfers import transfer
from kassa.money import USD, Money

DEPOSITS = 24
# Database calls (an executemany is one) for recording and crediting one deposit, house and
# customer accounts already open.
MOST_PER_CREDIT = {"postgresql": 2, "sqlite": 8}


def test_crediting_a_block_of_deposits_costs_a_bounded_number_of_statements(
    db: Database, clock: ManualClock
) -> None:
    world = make_world(db, clock)
    world.chain.mine([world.pay(100_000 + n, txid=f"{n:064x}") for n in range(DEPOSITS)])
    world.chain.mine_empty(3)
    seen: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen[re.sub(r"\s+", " ", statement).strip()[:60]] += 1

    sqlalchemy_event.listen(db.engine, "before_cursor_execute", count)
    try:
        report = world.watcher.tick()
    finally:
        sqlalchemy_event.remove(db.engine, "before_cursor_execute", count)
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
    # The deposit writes go together: none of them is a call per deposit.
    assert not [s for s in per_deposit if s.startswith("INSERT INTO deposit ")]
    assert not [s for s in per_deposit if s.startswith("INSERT INTO deposit_event")]
    assert not [s for s in per_deposit if s.startswith("INSERT INTO event")]
    assert not [s for s in per_deposit if s.startswith("INSERT INTO rate_lock")]
    assert not [s for s in per_deposit if s.startswith("UPDATE deposit ")]


def _account_events(db: Database, account_id: object) -> list[str]:
    with db.transaction() as conn:
        return outbox.types_of(conn, "account", str(account_id))


def test_a_credit_lifts_a_freeze_and_says_so_and_leaves_an_unfrozen_account_alone(
    db: Database, clock: ManualClock
) -> None:
    world = make_world(db, clock)
    # Two payments to a healthy account: no state change, so no account event.
    world.chain.mine([world.pay(100_000, txid="01" * 32), world.pay(50_000, txid="02" * 32)])
    world.chain.mine_empty(3)
    assert len(world.watcher.tick().credited) == 2
    assert _account_events(db, world.customer.id) == []

    # Spend all but $10, then reverse the first credit through a reorg: the account is frozen.
    spent = world.usd() - Money.parse("10", USD)
    with db.transaction() as conn:
        transfer(
            conn,
            debit_account_id=world.customer.ledger_account_id,
            credit_account_id=house.revenue(conn, USD, clock.now()).id,
            amount=spent,
            now=clock.now(),
            request=None,
        )
    world.chain.reorg(4)
    world.chain.mine_empty(6)
    world.watcher.tick()
    with db.transaction() as conn:
        assert get_balance(conn, world.customer.ledger_account_id).frozen
    assert _account_events(db, world.customer.id) == ["account.state_changed"]

    # Both payments mined again in one block: one batch, the first credit lifts the freeze.
    world.chain.include_again(
        [world.pay(100_000, txid="01" * 32), world.pay(50_000, txid="02" * 32)]
    )
    world.chain.mine_empty(3)
    world.watcher.tick()
    with db.transaction() as conn:
        assert not get_balance(conn, world.customer.ledger_account_id).frozen
    assert _account_events(db, world.customer.id) == ["account.state_changed"] * 2
    with db.transaction() as conn:
        rows = conn.execute(
            select(event.c.data)
            .where(event.c.subject_id == str(world.customer.id))
            .order_by(event.c.seq)
        ).scalars()
        assert [json.loads(row)["status"] for row in rows] == ["frozen", "active"]
