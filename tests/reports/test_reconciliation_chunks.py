"""Breaks stored in chunks: a run holds one chunk of its breaks at a time (the rest wait in its
spill file) and `store.apply` writes them chunk by chunk with the same lifecycle as before —
new, persisting, resolved, reopened, a break found twice counted once — on both databases."""

from __future__ import annotations

import uuid
from datetime import timedelta

from kassa.clock import ManualClock
from kassa.db import Database
from kassa.reports.reconciliation import store
from kassa.reports.reconciliation.model import Break, BreakClass, Findings, Leg, Outcome


def _findings(ids: list[str], chunk: int = 3) -> Findings:
    found = Findings(chunk=chunk)
    for object_id in ids:
        found.add(
            Break(BreakClass.NEGATIVE_BALANCE, object_id, f"{object_id} below zero", asset="USD")
        )
    found.checked.add((Leg.LEDGER, None))
    return found


def _apply(db: Database, clock: ManualClock, found: Findings, *, listed: int = 100) -> Outcome:
    clock.advance(timedelta(hours=1))
    with db.transaction() as conn:
        outcome = store.apply(
            conn,
            found,
            run_id=uuid.uuid4(),
            started_at=clock.now(),
            now=clock.now(),
            trigger="test",
            summary={},
        )
        outcome.summary["open_breaks"] = store.open_breaks(conn, limit=listed)
        outcome.summary["open_break_count"] = store.count_open(conn)
    found.close()
    return outcome


def test_findings_keep_one_chunk_in_memory_and_give_back_every_break_in_order() -> None:
    found = _findings([f"user:{n}" for n in range(8)])
    assert found.count == 8 and len(found._pending) == 2  # two full chunks went to the file
    assert [len(chunk) for chunk in found.chunks()] == [3, 3, 2]
    assert [b.object_id for b in found.breaks] == [f"user:{n}" for n in range(8)]
    found.add(Break(BreakClass.NEGATIVE_BALANCE, "user:8", "later", asset="USD"))
    assert [b.object_id for b in found.breaks][-2:] == ["user:7", "user:8"]
    found.close()


def test_chunked_breaks_keep_their_lifecycle(db: Database, clock: ManualClock) -> None:
    # user:1 found twice, in different chunks: one break, counted once.
    first = _apply(db, clock, _findings(["user:0", "user:1", "user:2", "user:3", "user:1"]))
    assert (first.new, first.persisting, first.resolved) == (4, 0, 0)
    second = _apply(db, clock, _findings(["user:1", "user:2", "user:3", "user:4", "user:5"]))
    assert (second.new, second.persisting, second.resolved) == (2, 3, 1)
    assert second.summary["open_break_count"] == 5
    assert {b["object_id"]: b["status"] for b in second.open_breaks} == {
        "user:1": "persisting",
        "user:2": "persisting",
        "user:3": "persisting",
        "user:4": "new",
        "user:5": "new",
    }
    # user:0 comes back: new again, on its old row (first seen now, so listed last).
    third = _apply(db, clock, _findings(["user:0", "user:5"]), listed=1)
    assert (third.new, third.persisting, third.resolved) == (1, 1, 4)
    assert [b["object_id"] for b in third.open_breaks] == ["user:5"]  # the first `listed`
    with db.transaction() as conn:
        assert [b["object_id"] for b in store.open_breaks(conn)] == ["user:5", "user:0"]
    # A run that did not check the ledger leaves its breaks as they are.
    unchecked = _apply(db, clock, Findings())
    assert (unchecked.resolved, unchecked.summary["open_break_count"]) == (0, 2)
