"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

The migrations run once per session into a template (a PostgreSQL database used as
`CREATE DATABASE … TEMPLATE`, a SQLite file that is copied), so every test starts from the schema
the migrations build — never from `metadata.create_all` — and tests may commit freely.
PostgreSQL is the server on 127.0.0.1:5432 (override with KASSA_TEST_PG_URL); each run creates
its own databases and drops them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from kassa.clock import ManualClock
from kassa.db import Database, make_engine
from kassa.db.migrate import upgrade
from kassa_dev.devnet.testing import (
    BitcoinNode,
    GanacheNode,
    TronNode,
    start_bitcoin_node,
    start_ganache_node,
    start_tron_node,
)

PG_ADMIN_URL = os.environ.get("KASSA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DIALECTS = ("sqlite", "postgres")


def _pg_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"


def _pg_admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


class DatabaseFactory:
    """Makes fresh migrated databases of one dialect and drops them afterwards."""

    def __init__(self, dialect: str, template: str, workdir: Path) -> None:
        self.dialect = dialect
        self.template = template
        self.workdir = workdir
        self._made: list[tuple[Database, str]] = []

    def url(self) -> str:
        if self.dialect == "postgres":
            name = f"kassa_t_{uuid.uuid4().hex[:16]}"
            _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            return _pg_url(name)
        path = self.workdir / f"kassa-{uuid.uuid4().hex[:12]}.sqlite3"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def new(self, pool_size: int = 10) -> Database:
        url = self.url()
        db = Database(make_engine(url, pool_size=pool_size))
        self._made.append((db, url))
        return db

    def cleanup(self) -> None:
        for db, url in self._made:
            db.dispose()
            if self.dialect == "postgres":
                _pg_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        self._made.clear()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    try:
        _pg_admin("SELECT 1")
    except psycopg.OperationalError as error:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {error}")
    name = f"kassa_tmpl_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    engine = make_engine(_pg_url(name))
    upgrade(engine)
    engine.dispose()
    yield name
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return str(path)


@pytest.fixture(params=DIALECTS)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """A factory of fresh databases of one dialect (each test runs once per dialect)."""
    dialect: str = request.param
    if dialect == "postgres":
        template = request.getfixturevalue("pg_template")
    else:
        template = request.getfixturevalue("sqlite_template")
    factory = DatabaseFactory(dialect, template, tmp_path)
    yield factory
    factory.cleanup()


@pytest.fixture
def db(databases: DatabaseFactory) -> Database:
    """A fresh migrated database, on SQLite and then on PostgreSQL."""
    return databases.new()


@pytest.fixture
def pg_databases(pg_template: str, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """PostgreSQL only: for the concurrency tests SQLite cannot express."""
    factory = DatabaseFactory("postgres", pg_template, tmp_path)
    yield factory
    factory.cleanup()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC))


# Real local chain nodes, one of each per test session, each on a free loopback port and
# stopped by pid at the end (see kassa_dev.devnet.testing). Tests using them are marked `chain`.
CHAIN_FIXTURES = frozenset({"ganache_node", "bitcoin_node", "tron_sim"})


@pytest.fixture(scope="session")
def ganache_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GanacheNode]:
    """ganache, instamine, chain id 1337, TestUSDT deployed by account 0."""
    with start_ganache_node(tmp_path_factory.mktemp("ganache")) as node:
        yield node


@pytest.fixture(scope="session")
def bitcoin_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BitcoinNode]:
    """bcoin regtest (Core prefixes, strict sendrawtransaction), coins mined to the faucet."""
    with start_bitcoin_node(tmp_path_factory.mktemp("bitcoin")) as node:
        yield node


@pytest.fixture(scope="session")
def tron_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TronNode]:
    """Kassa's TRON full-node simulator under uvicorn, a block every 0.5 s."""
    with start_tron_node(tmp_path_factory.mktemp("tron")) as node:
        yield node


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        fixtures = set(getattr(item, "fixturenames", ()))
        uses_pg = "pg_databases" in fixtures or (
            callspec is not None and callspec.params.get("databases") == "postgres"
        )
        if uses_pg:
            item.add_marker(pytest.mark.postgres)
        if fixtures & CHAIN_FIXTURES:
            item.add_marker(pytest.mark.chain)
