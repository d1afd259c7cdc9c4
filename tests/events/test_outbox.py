"""The outbox numbers each subject's events and commits them only with their transaction."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from kassa.db import Database, make_engine
from kassa.events.outbox import body, envelope, record
from kassa.events.tables import event

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_events_of_one_subject_are_numbered_in_order(db: Database) -> None:
    deposit, other = uuid.uuid4(), uuid.uuid4()
    with db.engine.begin() as conn:
        first = record(
            conn,
            type="deposit.seen",
            subject_kind="deposit",
            subject_id=deposit,
            data={"id": str(deposit), "status": "seen"},
            at=AT,
        )
        elsewhere = record(
            conn,
            type="deposit.seen",
            subject_kind="deposit",
            subject_id=other,
            data={"id": str(other)},
            at=AT,
        )
    with db.engine.begin() as conn:
        second = record(
            conn,
            type="deposit.credited",
            subject_kind="deposit",
            subject_id=deposit,
            data={"id": str(deposit), "status": "credited"},
            at=AT,
        )
    assert (first.seq, second.seq, elsewhere.seq) == (1, 2, 1)
    assert len({first.public_id, second.public_id, elsewhere.public_id}) == 3
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(event.c.type, event.c.seq, event.c.data, event.c.dispatched_at)
            .where(event.c.subject_id == str(deposit))
            .order_by(event.c.seq)
        ).all()
    assert [(r.type, r.seq) for r in rows] == [("deposit.seen", 1), ("deposit.credited", 2)]
    assert json.loads(rows[1].data) == {"id": str(deposit), "status": "credited"}
    assert all(r.dispatched_at is None for r in rows)


def test_an_event_rolls_back_with_its_change(db: Database) -> None:
    subject = uuid.uuid4()
    with db.engine.connect() as conn, conn.begin() as tx:
        record(
            conn,
            type="account.state_changed",
            subject_kind="account",
            subject_id=subject,
            data={"state": "frozen"},
            at=AT,
        )
        tx.rollback()
    with db.engine.connect() as conn:
        assert conn.execute(select(event.c.id)).first() is None


def test_the_envelope_names_the_event_its_subject_and_carries_the_data(db: Database) -> None:
    account = uuid.uuid4()
    with db.engine.begin() as conn:
        written = record(
            conn,
            type="withdrawal.broadcast",
            subject_kind="withdrawal",
            subject_id=account,
            data={"status": "broadcast"},
            at=AT,
            account_id=account,
        )
        row = conn.execute(select(event)).one()
    assert envelope(row) == {
        "id": written.public_id,
        "type": "withdrawal.broadcast",
        "timestamp": "2026-12-07T12:00:00.000Z",
        "account_id": str(account),
        "subject": {"kind": "withdrawal", "id": str(account), "seq": 1},
        "data": {"status": "broadcast"},
    }
    assert json.loads(body(row)) == envelope(row)


def test_a_type_outside_the_catalog_is_refused(sqlite_template: str, tmp_path: Path) -> None:
    """Nothing reaches a receiver undocumented (no database is touched: SQLite only)."""
    path = tmp_path / "kassa.sqlite3"
    shutil.copyfile(sqlite_template, path)
    database = Database(make_engine(f"sqlite:///{path}"))
    with database.engine.begin() as conn:
        for type_, kind in [("deposit.vanished", "deposit"), ("deposit.seen", "withdrawal")]:
            with pytest.raises(ValueError, match="not in the catalog"):
                record(conn, type=type_, subject_kind=kind, subject_id="x", data={}, at=AT)
        assert conn.execute(select(event.c.id)).first() is None
    database.dispose()
