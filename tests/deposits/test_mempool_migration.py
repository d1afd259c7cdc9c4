"""Migration 0019 (the ``dropped`` deposit status and the ``chain_node`` table) goes down to
0018 (the revision before it) and up again on both databases (the schema test checks that
the way up builds the models)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect

from kassa.db.migrate import current_revision, downgrade, upgrade

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory


def test_0019_downgrades_and_upgrades_again(databases: DatabaseFactory) -> None:
    db = databases.new()
    downgrade(db.engine, "0018")
    assert current_revision(db.engine) == "0018"
    assert not inspect(db.engine).has_table("chain_node")
    upgrade(db.engine, "0019")
    assert current_revision(db.engine) == "0019"
    assert inspect(db.engine).has_table("chain_node")
    checks = inspect(db.engine).get_check_constraints("deposit")
    assert any("dropped" in c["sqltext"] for c in checks)
