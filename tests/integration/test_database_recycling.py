"""The test harness hands a used PostgreSQL database to a later test only if it is the template
again (tests/conftest.py, `PgRecycler`): these tests check that promise, since every other
PostgreSQL test relies on it.

Each test takes a database as any test does, uses it as a test would (the real ledger and
migrations), and recycles it itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy import inspect

from kassa.accounts import service as accounts
from kassa.db import Database, make_engine
from kassa.db.migrate import current_revision, downgrade, head_revision
from kassa.ledger.transfers import adjust
from kassa.money import USD, Money

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.conftest import PgProvisioner, PgRecycler

NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
PG_ADMIN_URL = os.environ.get("KASSA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _libpq_url(name: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def _pg_admin(statement: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


def _pg_drop(name: str) -> None:
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def recycler(pg_recycler: PgRecycler) -> PgRecycler:
    return pg_recycler


@dataclass
class Made:
    """The databases a test took, and those it recycled into new names."""

    taken: list[str] = field(default_factory=list)
    recycled: list[str] = field(default_factory=list)


@pytest.fixture
def made(pg_provisioner: PgProvisioner) -> Iterator[Made]:
    """Afterwards a recycled database goes back to the provisioner; a taken one that still
    exists (a failed test left it as it was) is dropped."""
    made = Made()
    yield made
    for name in made.recycled:
        pg_provisioner.give_back(name)
    for name in made.taken:
        _pg_drop(name)


@pytest.fixture
def new(pg_provisioner: PgProvisioner, made: Made) -> Callable[[], str]:
    """A database as a test gets it (from the provisioner), recycled by the test itself."""

    def take() -> str:
        name = pg_provisioner.take()
        made.taken.append(name)
        return name

    return take


def _exists(name: str) -> bool:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
        return row.fetchone() == (1,)


def _use(name: str) -> Database:
    return Database(
        make_engine(_libpq_url(name).replace("postgresql://", "postgresql+psycopg://", 1))
    )


def _credit_a_customer(db: Database) -> int:
    with db.transaction() as conn:
        account = accounts.create(conn, external_id="c-1", now=NOW, request=None)
        adjust(
            conn,
            account_id=account.ledger_account_id,
            amount=Money.parse("12.00", USD),
            direction="credit",
            reason="test",
            actor="test",
            now=NOW,
            request=None,
        )
    return account.ledger_account_id


def test_a_used_database_comes_back_empty_under_a_new_name(
    new: Callable[[], str], made: Made, recycler: PgRecycler
) -> None:
    name = new()
    db = _use(name)
    first_id = _credit_a_customer(db)
    db.dispose()

    renamed = recycler.recycle(name)

    assert renamed is not None and renamed != name
    made.recycled.append(renamed)
    assert not _exists(name)
    with psycopg.connect(_libpq_url(renamed)) as conn:
        tables = conn.execute(
            "SELECT format('%I', relname) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND relkind = 'r'"
            " AND relname <> 'alembic_version'"
        ).fetchall()
        assert len(tables) > 20
        for (table,) in tables:
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
            assert count == (0,), table
    # The same work on the recycled database gets the same ids as on a new one: the
    # sequences are back at the template's position.
    again = _use(renamed)
    assert _credit_a_customer(again) == first_id
    assert current_revision(again.engine) == head_revision()
    again.dispose()


def test_a_session_left_open_is_ended_and_its_database_recycled(
    new: Callable[[], str], made: Made, recycler: PgRecycler
) -> None:
    name = new()
    left_open = psycopg.connect(_libpq_url(name))
    left_open.execute("SELECT count(*) FROM ledger_account")  # idle in transaction

    renamed = recycler.recycle(name)

    assert renamed is not None
    made.recycled.append(renamed)
    with pytest.raises(psycopg.OperationalError):
        left_open.execute("SELECT 1")
    left_open.close()


def test_a_database_whose_schema_changed_is_dropped(
    new: Callable[[], str], made: Made, recycler: PgRecycler
) -> None:
    name = new()
    db = _use(name)
    downgrade(db.engine, "0003")
    assert "usage_event" not in inspect(db.engine).get_table_names()
    db.dispose()

    assert recycler.recycle(name) is None
    assert not _exists(name)


def test_a_database_whose_seeded_rows_changed_is_dropped(
    new: Callable[[], str], made: Made, recycler: PgRecycler
) -> None:
    name = new()
    with psycopg.connect(_libpq_url(name)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'elsewhere'")

    assert recycler.recycle(name) is None
    assert not _exists(name)


def test_a_table_a_test_added_gets_its_database_dropped(
    new: Callable[[], str], made: Made, recycler: PgRecycler
) -> None:
    name = new()
    with psycopg.connect(_libpq_url(name)) as conn:
        conn.execute("CREATE TABLE scratch (id int)")

    assert recycler.recycle(name) is None
    assert not _exists(name)
