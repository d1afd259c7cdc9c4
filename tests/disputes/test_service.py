"""The dispute service on both databases: the open-dispute fact follows the dispute's status,
and its history is append-only in the database itself."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from kassa.accounts import service as accounts
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.disputes import service as disputes
from kassa.disputes.model import Dispute, DisputeStatus, Outcome, Subject
from kassa.ledger.transfers import adjust
from kassa.money import USD, Money
from kassa.policy import Policy
from kassa.spending import activations


def _disputed_activation(db: Database, clock: ManualClock) -> Dispute:
    now = clock.now()
    with db.transaction() as conn:
        account = accounts.create(conn, external_id="d1", now=now, request=None)
        adjust(
            conn,
            account_id=account.ledger_account_id,
            amount=Money.parse("10", USD),
            direction="credit",
            reason="test funds",
            actor="test",
            now=now,
            request=None,
        )
        made = activations.reserve(
            conn, account, price=Money.parse("4", USD), now=now, request=None
        )
        activations.fulfil(conn, account, made.id, now=now, request=None)
        return disputes.open_dispute(
            conn,
            account=account,
            subject=Subject.ACTIVATION,
            subject_id=made.id,
            reason="the code never arrived",
            actor="operator:test",
            policy=Policy(),
            now=now,
        )


def test_the_open_dispute_fact_follows_the_status(db: Database, clock: ManualClock) -> None:
    opened = _disputed_activation(db, clock)
    with db.transaction() as conn:
        assert disputes.has_open(conn, opened.customer_account_id)
        resolved = disputes.resolve(
            conn,
            opened.id,
            outcome=Outcome.REJECTED,
            note="delivered",
            actor="operator:test",
            policy=Policy(),
            now=clock.now(),
            request=None,
        )
        assert resolved.status is DisputeStatus.REJECTED
        assert not disputes.has_open(conn, opened.customer_account_id)
        assert [(e.from_status, e.to_status) for e in disputes.events(conn, opened.id)] == [
            (None, DisputeStatus.OPEN),
            (DisputeStatus.OPEN, DisputeStatus.REJECTED),
        ]


def test_the_history_is_append_only(db: Database, clock: ManualClock) -> None:
    _disputed_activation(db, clock)
    for statement in (
        "UPDATE dispute_event SET note = 'nothing happened'",
        "DELETE FROM dispute_event",
    ):
        with pytest.raises(DatabaseError, match="append-only"), db.transaction() as conn:
            conn.execute(text(statement))
