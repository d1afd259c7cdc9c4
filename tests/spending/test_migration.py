"""Migration 0004 goes down to 0003 and up again on both databases (the schema test checks that
the way up builds the models)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect

from kassa.db.migrate import current_revision, downgrade, upgrade

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

SPENDING_TABLES = {"usage_batch", "usage_event", "account_usage", "activation"}


def test_0004_downgrades_and_upgrades_again(databases: DatabaseFactory) -> None:
    db = databases.new()

    downgrade(db.engine, "0003")
    tables = set(inspect(db.engine).get_table_names())
    assert current_revision(db.engine) == "0003"
    assert not (SPENDING_TABLES | {"account_state_change"}) & tables
    assert "customer_account" in tables

    upgrade(db.engine, "0004")
    assert current_revision(db.engine) == "0004"
    assert SPENDING_TABLES | {"account_state_change"} <= set(inspect(db.engine).get_table_names())
