"""Migration 0009 goes down to 0008 and up again on both databases, append-only trigger
included (the schema test checks that the way up builds the models)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect

from kassa.db.migrate import current_revision, downgrade, upgrade

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

DISPUTE_TABLES = {"dispute", "dispute_event"}


def test_0009_downgrades_and_upgrades_again(databases: DatabaseFactory) -> None:
    db = databases.new()

    downgrade(db.engine, "0008")
    assert current_revision(db.engine) == "0008"
    assert not DISPUTE_TABLES & set(inspect(db.engine).get_table_names())

    upgrade(db.engine, "0009")
    assert current_revision(db.engine) == "0009"
    assert set(inspect(db.engine).get_table_names()) >= DISPUTE_TABLES
