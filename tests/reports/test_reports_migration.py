"""Migration 0016 (the reports' time indexes) goes down to 0015 and up again on both databases
(the schema test checks that the way up builds the models)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import inspect

from kassa.db.migrate import current_revision, downgrade, upgrade

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory


def _has_index(db_engine: object, table: str, name: str) -> bool:
    return any(i["name"] == name for i in inspect(db_engine).get_indexes(table))


def test_0016_downgrades_and_upgrades_again(databases: DatabaseFactory) -> None:
    db = databases.new()
    downgrade(db.engine, "0015")
    assert current_revision(db.engine) == "0015"
    assert not _has_index(db.engine, "ledger_transaction", "ix_ledger_transaction_created_at")
    upgrade(db.engine, "0016")
    assert current_revision(db.engine) == "0016"
    assert _has_index(db.engine, "ledger_transaction", "ix_ledger_transaction_created_at")
    assert _has_index(db.engine, "payout_request", "ix_payout_request_settled_at")
