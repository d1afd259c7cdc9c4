"""Migration 0013 (re-pricing at approval) goes down to 0012 and up again on both databases,
and ``payout_event`` stays append-only through it (the columns are added in place; the schema
test checks that the way up builds the models)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from kassa.db.migrate import current_revision, downgrade, upgrade

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory


def _columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns("payout_event")}


def test_0013_downgrades_and_upgrades_again(databases: DatabaseFactory) -> None:
    db = databases.new()

    downgrade(db.engine, "0012")
    assert current_revision(db.engine) == "0012"
    assert not {"kind", "detail"} & _columns(db.engine)

    assert _triggers(db.engine) == APPEND_ONLY[db.engine.dialect.name]

    upgrade(db.engine, "0013")
    assert {"kind", "detail"} <= _columns(db.engine)
    assert _triggers(db.engine) == APPEND_ONLY[db.engine.dialect.name]


APPEND_ONLY = {
    "sqlite": {"payout_event_no_update", "payout_event_no_delete"},
    "postgresql": {"payout_event_append_only"},
}


def _triggers(engine: Engine) -> set[str]:
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'payout_event'"
        if engine.dialect.name == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE tgrelid = 'payout_event'::regclass "
        "AND NOT tgisinternal"
    )
    with engine.connect() as conn:
        return {str(row[0]) for row in conn.execute(text(query))}
