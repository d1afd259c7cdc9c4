"""Reconciliation's ledger and records legs and the lifecycle of its breaks, on both databases,
with deposits credited by the real watcher over the in-memory `FakeChain`, one of them charged
back (the chain leg runs against the real local chains in test_reconciliation_devnet.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from kassa.accounts import service as accounts
from kassa.chains.hd import parse_account_key
from kassa.chains.network import BtcNetwork, Chain
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.derive import HdDeriver
from kassa.deposits.fake import FakeChain
from kassa.deposits.model import ChainTransfer, SenderKind
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.disputes import service as disputes
from kassa.disputes.model import Outcome as DisputeOutcome
from kassa.disputes.model import Subject
from kassa.events.tables import event
from kassa.ledger.tables import ledger_account, ledger_posting, ledger_transaction
from kassa.policy import Policy
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa.reports.reconciliation import store
from kassa.reports.reconciliation.model import BreakClass
from kassa.reports.reconciliation.run import Reconciler, breaks_csv
from kassa.reports.reconciliation.tables import reconciliation_break
from kassa_dev.devkeys import dev_account_xpub

BTC_KEY = parse_account_key(
    dev_account_xpub("abandon " * 11 + "about", BtcNetwork.REGTEST), BtcNetwork.REGTEST
)


def credited_deposit(db: Database, clock: ManualClock) -> records.Deposit:
    """A 0.001 BTC deposit credited $60 by the real watcher over a `FakeChain`, next to another
    one that was charged back (its net credit is zero by design: not a break)."""
    chain = FakeChain(Chain.BTC, clock.now() - timedelta(hours=1), final_depth=1)
    pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
    pricing.refresh()
    with db.transaction() as conn:
        customer = accounts.create(conn, external_id="user-42", now=clock.now(), request=None)
        address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(BTC_KEY), clock.now())
    watcher = Watcher(db, clock, chain, pricing, WatcherConfig(Chain.BTC, dust={"BTC": 546}))
    paid = [
        ChainTransfer(
            chain=Chain.BTC,
            asset="BTC",
            txid=txid * 32,
            position=0,
            to_address=address.address,
            amount=100_000,
            sender="bcrt1qsender",
            sender_kind=SenderKind.KNOWN,
            success=True,
        )
        for txid in ("aa", "bb")
    ]
    chain.mine(paid)
    watcher.tick()
    with db.transaction() as conn:
        kept, charged_back = sorted(records.for_account(conn, customer.id), key=lambda d: d.txid)
        policy = Policy()
        opened = disputes.open_dispute(
            conn,
            account=customer,
            subject=Subject.DEPOSIT,
            subject_id=charged_back.id,
            reason="charged back",
            actor="operator:test",
            policy=policy,
            now=clock.now(),
        )
        disputes.resolve(
            conn,
            opened.id,
            outcome=DisputeOutcome.CHARGEBACK,
            note="processor case 1",
            actor="operator:test",
            policy=policy,
            now=clock.now(),
            request=None,
        )
    return kept


@contextmanager
def triggers_off(conn: Connection) -> Iterator[None]:
    """Let this transaction change the append-only ledger tables (what direct SQL by someone
    with the database's keys could do)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        yield
        conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
        return
    saved = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
        "AND tbl_name IN ('ledger_posting', 'ledger_transaction')"
    ).all()
    for name, _sql in saved:
        conn.exec_driver_sql(f"DROP TRIGGER {name}")
    yield
    for _name, sql in saved:
        conn.exec_driver_sql(sql)


def _shift_sums(conn: Connection, postings: Sequence[Any], sign: int) -> None:
    for posting in postings:
        account = conn.execute(
            select(ledger_account).where(ledger_account.c.id == posting.account_id)
        ).one()
        amount = int(posting.amount)
        column = "debits_posted" if amount > 0 else "credits_posted"
        conn.execute(
            update(ledger_account)
            .where(ledger_account.c.id == posting.account_id)
            .values({column: int(account._mapping[column]) + sign * abs(amount)})
        )


def remove_transaction(db: Database, transaction_id: uuid.UUID) -> tuple[Any, Sequence[Any]]:
    """Delete a journal transaction, its postings and their trace in the stored sums, so the
    books still balance: only the records show what is missing."""
    with db.transaction() as conn, triggers_off(conn):
        txn = conn.execute(
            select(ledger_transaction).where(ledger_transaction.c.id == transaction_id)
        ).one()
        postings = conn.execute(
            select(ledger_posting).where(ledger_posting.c.transaction_id == transaction_id)
        ).all()
        conn.execute(
            delete(ledger_posting).where(ledger_posting.c.transaction_id == transaction_id)
        )
        conn.execute(delete(ledger_transaction).where(ledger_transaction.c.id == transaction_id))
        _shift_sums(conn, postings, -1)
    return txn, postings


def restore_transaction(db: Database, txn: Any, postings: Sequence[Any]) -> None:
    with db.transaction() as conn, triggers_off(conn):
        conn.execute(insert(ledger_transaction).values(**txn._mapping))
        for posting in postings:
            conn.execute(insert(ledger_posting).values(**posting._mapping))
        _shift_sums(conn, postings, +1)


def test_a_removed_credit_is_one_new_break_that_persists_then_resolves_when_restored(
    db: Database, clock: ManualClock
) -> None:
    credited = credited_deposit(db, clock)
    assert credited.credit_transaction_id is not None
    reconciler = Reconciler(db, clock, {})

    clean = reconciler.run()
    assert (clean.new, clean.persisting, clean.resolved) == (0, 0, 0)
    assert clean.open_breaks == []
    assert any("solvency" in note for note in clean.summary["notes"])  # no chain was read

    txn, postings = remove_transaction(db, credited.credit_transaction_id)
    clock.advance(timedelta(hours=1))
    first = reconciler.run()
    assert (first.new, first.persisting, first.resolved) == (1, 0, 0)
    [found] = first.open_breaks
    assert found["class"] == BreakClass.DEPOSIT_CREDIT_MISMATCH
    assert found["object_id"] == str(credited.id)
    assert (found["expected"], found["actual"], found["difference"]) == (
        "60000000",
        "0",
        "-60000000",
    )
    assert found["status"] == "new"
    assert "deposit_credit_mismatch" in breaks_csv(first.open_breaks)

    clock.advance(timedelta(days=1))
    second = reconciler.run()
    assert (second.new, second.persisting, second.resolved) == (0, 1, 0)
    [again] = second.open_breaks
    assert again["status"] == "persisting"
    assert again["first_seen_at"] == found["first_seen_at"] < again["last_seen_at"]

    restore_transaction(db, txn, postings)
    third = reconciler.run()
    assert (third.new, third.persisting, third.resolved) == (0, 0, 1)
    with db.transaction() as conn:
        assert store.open_breaks(conn) == []
        [row] = conn.execute(select(reconciliation_break)).all()
        assert row.status == "resolved" and row.resolved_at is not None
        events = conn.execute(
            select(event.c.type, event.c.subject_kind, event.c.data).order_by(event.c.id)
        ).all()
        assert store.latest_run(conn) is not None
    completed = [json.loads(e.data) for e in events if e.type == "reconciliation.completed"]
    assert [(e["new"], e["persisting"], e["resolved"]) for e in completed] == [
        (0, 0, 0),
        (1, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
    ]
    assert {e.subject_kind for e in events if e.type == "reconciliation.completed"} == {
        "reconciliation"
    }
