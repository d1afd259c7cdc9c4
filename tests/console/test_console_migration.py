"""Migration 0018 (the console's sessions) goes down and up again on both databases (the
schema test checks that the way up builds the models)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect

from kassa.db.migrate import current_revision, downgrade, upgrade

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory


def test_0018_downgrades_and_upgrades_again(databases: DatabaseFactory) -> None:
    db = databases.new()
    assert "console_session" in inspect(db.engine).get_table_names()
    downgrade(db.engine, "0017")  # the revision before it
    assert "console_session" not in inspect(db.engine).get_table_names()
    upgrade(db.engine, "0018")
    assert current_revision(db.engine) == "0018"
    assert "console_session" in inspect(db.engine).get_table_names()
