"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

The migrations run once per session into a template (a PostgreSQL database used as
`CREATE DATABASE … TEMPLATE`, a SQLite file that is copied), so every test starts from the schema
the migrations build — never from `metadata.create_all` — and tests may commit freely.
PostgreSQL is the server on 127.0.0.1:5432 (override with KASSA_TEST_PG_URL); each run creates
its own databases and drops them.

A PostgreSQL `CREATE DATABASE` and `DROP DATABASE` (which forces a checkpoint) take about a second
each, longer than most tests. So each test process (each pytest-xdist worker) keeps a
`PgProvisioner`: a thread that creates the next databases from the template before a test asks,
and threads that drop used ones while the next tests run. Every database is still used by one
test only, straight from the template. Tests holding many PostgreSQL connections at once (a
pool larger than `MANY_CONNECTIONS`) take a lock shared by the workers of the run, so two of them
never run together and the server's `max_connections` is not exceeded.
"""

from __future__ import annotations

import fcntl
import os
import queue
import shutil
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

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


MANY_CONNECTIONS = 12
"""A PostgreSQL database with a larger pool is used one test at a time across the workers."""


class PgProvisioner:
    """Databases made from the template ahead of time, and used ones dropped in the background.

    One thread keeps `ahead` databases ready; `take()` hands one out (waiting if none is ready
    yet, and raising what the thread met if it failed). `give_back()` drops a used database on a
    small thread pool: concurrent drops share the checkpoint each one forces. `close()` drops the
    spare databases and waits for every drop.
    """

    def __init__(self, template: str, ahead: int = 2, droppers: int = 4) -> None:
        self.template = template
        self._ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=ahead)
        self._closing = threading.Event()
        self._drops = ThreadPoolExecutor(max_workers=droppers, thread_name_prefix="pg-drop")
        self._pending: list[Future[None]] = []
        self._maker = threading.Thread(target=self._make, name="pg-create", daemon=True)
        self._maker.start()

    def _make(self) -> None:
        while not self._closing.is_set():
            name = f"kassa_t_{uuid.uuid4().hex[:16]}"
            try:
                _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            except BaseException as error:  # handed to the test that asks next
                self._ready.put(error)
                return
            while True:
                try:
                    self._ready.put(name, timeout=0.2)
                    break
                except queue.Full:
                    if self._closing.is_set():
                        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                        return

    def take(self) -> str:
        item = self._ready.get(timeout=300)
        if isinstance(item, BaseException):
            raise RuntimeError("could not create a test database") from item
        return item

    def give_back(self, name: str) -> None:
        self._pending.append(
            self._drops.submit(_pg_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )

    def close(self) -> None:
        self._closing.set()
        while self._maker.is_alive() or not self._ready.empty():
            try:
                item = self._ready.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(item, str):
                self.give_back(item)
        self._maker.join()
        self._drops.shutdown(wait=True)
        for future in self._pending:
            future.result()  # a drop that failed fails the session's teardown


class DatabaseFactory:
    """Makes fresh migrated databases of one dialect and drops them afterwards."""

    def __init__(
        self,
        dialect: str,
        template: str,
        workdir: Path,
        provisioner: PgProvisioner | None = None,
        lock_file: Path | None = None,
    ) -> None:
        if (dialect == "postgres") != (provisioner is not None):
            raise ValueError("PostgreSQL databases, and only they, come from a PgProvisioner")
        self.dialect = dialect
        self.template = template
        self.workdir = workdir
        self.provisioner = provisioner
        self.lock_file = lock_file
        self._lock: IO[bytes] | None = None
        self._made: list[tuple[Database, str]] = []

    def url(self) -> str:
        if self.provisioner is not None:
            return _pg_url(self.provisioner.take())
        path = self.workdir / f"kassa-{uuid.uuid4().hex[:12]}.sqlite3"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def new(self, pool_size: int = 10) -> Database:
        if self.dialect == "postgres" and pool_size > MANY_CONNECTIONS:
            self._hold_connection_lock()
        url = self.url()
        db = Database(make_engine(url, pool_size=pool_size))
        self._made.append((db, url))
        return db

    def _hold_connection_lock(self) -> None:
        if self._lock is not None or self.lock_file is None:
            return
        self._lock = self.lock_file.open("ab")
        fcntl.flock(self._lock, fcntl.LOCK_EX)

    def cleanup(self) -> None:
        for db, url in self._made:
            db.dispose()
            if self.provisioner is not None:
                self.provisioner.give_back(url.rsplit("/", 1)[1])
        self._made.clear()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


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
def pg_provisioner(pg_template: str) -> Iterator[PgProvisioner]:
    provisioner = PgProvisioner(pg_template)
    yield provisioner
    provisioner.close()


@pytest.fixture(scope="session")
def connection_lock_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file every worker of this run locks around tests holding many connections.

    Under pytest-xdist each worker's base temp directory is `<run>/popen-gwN`; the run's own
    directory is shared by its workers (and by no other run).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base
    return shared / "pg-many-connections.lock"


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
        factory = DatabaseFactory(
            dialect,
            request.getfixturevalue("pg_template"),
            tmp_path,
            provisioner=request.getfixturevalue("pg_provisioner"),
            lock_file=request.getfixturevalue("connection_lock_file"),
        )
    else:
        factory = DatabaseFactory(dialect, request.getfixturevalue("sqlite_template"), tmp_path)
    yield factory
    factory.cleanup()


@pytest.fixture
def db(databases: DatabaseFactory) -> Database:
    """A fresh migrated database, on SQLite and then on PostgreSQL."""
    return databases.new()


@pytest.fixture
def pg_databases(
    pg_template: str,
    pg_provisioner: PgProvisioner,
    connection_lock_file: Path,
    tmp_path: Path,
) -> Iterator[DatabaseFactory]:
    """PostgreSQL only: for the concurrency tests SQLite cannot express."""
    factory = DatabaseFactory(
        "postgres",
        pg_template,
        tmp_path,
        provisioner=pg_provisioner,
        lock_file=connection_lock_file,
    )
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
    """Mark the tests that need PostgreSQL or chain nodes; under pytest-xdist, run long ones first.

    With `--dist load --maxschedchunk 1` (`./dev test`) each worker takes the next test when it
    is done with one, so putting the slow tests, then the chain tests, first keeps a minute-long
    test from starting last while the other workers sit idle (longest first). A plain `pytest`
    keeps the written order.
    """
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
    if "PYTEST_XDIST_WORKER" in os.environ:
        # Stable: every worker computes the same order, as xdist requires.
        items.sort(key=_longest_first)


def _longest_first(item: pytest.Item) -> int:
    if item.get_closest_marker("slow") is not None:
        return 0
    if item.get_closest_marker("chain") is not None:
        return 1
    return 2
