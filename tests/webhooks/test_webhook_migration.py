"""Migration 0012 goes down to 0011 and up again on both databases (the schema test checks that
the way up builds the models)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect

from kassa.db.migrate import current_revision, downgrade, upgrade

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

WEBHOOK_TABLES = {"webhook_endpoint", "webhook_delivery", "webhook_attempt"}


def test_0012_downgrades_and_upgrades_again(databases: DatabaseFactory) -> None:
    db = databases.new()

    downgrade(db.engine, "0011")
    assert current_revision(db.engine) == "0011"
    assert not WEBHOOK_TABLES & set(inspect(db.engine).get_table_names())

    upgrade(db.engine, "0012")
    assert current_revision(db.engine) == "0012"
    assert set(inspect(db.engine).get_table_names()) >= WEBHOOK_TABLES
