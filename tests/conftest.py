"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

The migrations run once per session into a template (a PostgreSQL database used as
`CREATE DATABASE … TEMPLATE`, a SQLite file that is copied), so every test starts from the schema
the migrations build — never from `metadata.create_all` — and tests may commit freely.
PostgreSQL is the server on 127.0.0.1:5432 (override with KASSA_TEST_PG_URL); each run creates
its own databases and drops them.

A PostgreSQL `CREATE DATABASE` and `DROP DATABASE` (which forces a checkpoint) take about a second
each, longer than most tests, and load the server for every other test. So each test process
(each pytest-xdist worker) keeps a `PgProvisioner`: a thread that creates databases from the
template before a test asks, and threads that make used ones the template again (`PgRecycler`:
truncate, compare with the template, rename) while the next tests run. Every test still starts
from a database equal to the template, which the migrations built. Tests holding many PostgreSQL
connections at once (a pool larger than `MANY_CONNECTIONS`) take a lock shared by the workers of
the run, so two of them never run together and the server's `max_connections` is not exceeded.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import psycopg
import pytest
from psycopg import sql

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


def _pg_admin(statement: str, params: tuple[object, ...] | None = None) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement, params)


MANY_CONNECTIONS = 12
"""A PostgreSQL database with a larger pool is used one test at a time across the workers."""


class PgProvisioner:
    """Databases made from the template ahead of time, and used ones recycled in the background.

    One thread keeps `ahead` databases ready; `take()` hands one out (waiting if none is ready
    yet, and raising what the thread met if it failed). `give_back()` recycles a used database on
    a small thread pool (`PgRecycler`): emptied, checked to be the template again, renamed and
    handed out to a later test; one that cannot be made the template again is dropped. The
    thread only creates a database when the ready ones and the ones being recycled are fewer
    than `ahead`, so a worker running one test at a time makes about `ahead + 1` databases in
    its session instead of one per test. `close()` waits for the recycling and drops them all.
    """

    def __init__(self, template: str, ahead: int = 2, recyclers: int = 4) -> None:
        self.template = template
        self._ahead = ahead
        self._recycler = PgRecycler(template)
        self._cond = threading.Condition()
        self._ready: deque[str] = deque()
        self._coming = 0  # databases being created or recycled, ready soon
        self._failure: BaseException | None = None
        self._closing = False
        self._pool = ThreadPoolExecutor(max_workers=recyclers, thread_name_prefix="pg-recycle")
        self._pending: list[Future[None]] = []
        self._maker = threading.Thread(target=self._make, name="pg-create", daemon=True)
        self._maker.start()

    def _make(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closing or len(self._ready) + self._coming < self._ahead
                )
                if self._closing:
                    return
                self._coming += 1
            name = _fresh_name()
            try:
                _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                _configure(name)
            except BaseException as error:  # handed to the test that asks next
                self._arrived(None, error)
                return
            self._arrived(name)

    def _arrived(self, name: str | None, error: BaseException | None = None) -> None:
        with self._cond:
            self._coming -= 1
            if name is not None:
                self._ready.append(name)
            if error is not None:
                self._failure = error
            self._cond.notify_all()

    def take(self) -> str:
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._ready or (self._failure is not None and self._coming == 0),
                timeout=300,
            ):
                raise RuntimeError("no test database was ready after 300 s")
            if not self._ready:
                raise RuntimeError("could not create a test database") from self._failure
            name = self._ready.popleft()
            self._cond.notify_all()
            return name

    def give_back(self, name: str) -> None:
        with self._cond:
            self._coming += 1
        self._pending.append(self._pool.submit(self._recycle, name))

    def _recycle(self, name: str) -> None:
        renamed = None
        try:
            renamed = self._recycler.recycle(name)
        finally:  # a failed drop is raised again by close(); the maker makes up for it
            self._arrived(renamed)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._maker.join()
        self._pool.shutdown(wait=True)
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="pg-drop") as drops:
            list(drops.map(_pg_drop, self._ready))
        self._ready.clear()
        for future in self._pending:
            future.result()  # a recycling that failed fails the session's teardown


class PgRecycler:
    """Makes a used test database the template again, or drops it.

    A `DROP DATABASE` forces a checkpoint and a `CREATE DATABASE` writes the whole 9 MB template
    (system catalogs included) to the WAL and the buffers the next checkpoint writes out: with a
    database per test, the server spent the suite writing and syncing files. Emptying the
    tables the template leaves empty costs a few milliseconds instead (`TRUNCATE` makes new
    files for every table and index: ten times slower on a busy disk).

    After a test: its other sessions are ended; every table the template leaves empty is
    emptied with `DELETE` (as in replication: neither the append-only triggers nor the foreign
    keys' fire) and vacuumed, which gives the space back so the next test's rows are stored as
    in a new table; every sequence is set back to where the template has it. Then the
    database's fingerprint must equal the template's: every schema object with its definition,
    every sequence's position, the rows of every table (none but in the tables the template
    fills), and the database's settings. A test that changed the schema (a
    migration test) or the seeded rows fails the comparison, and its database is dropped.
    The database then gets a new name, so nothing still holding the old URL reaches the next
    test's data.
    """

    def __init__(self, template: str) -> None:
        with psycopg.connect(_libpq_url(template), autocommit=True) as conn:
            tables = [sql.Identifier(*row) for row in conn.execute(_TABLES)]
            seeded = [t for t in tables if _has_rows(conn, t)]
            self._emptied = [t for t in tables if t not in seeded]
            self._tables = tables
            self._sequences = conn.execute(_SEQUENCES).fetchall()
            self._fingerprint = _fingerprint(conn, tables)

    def recycle(self, name: str) -> str | None:
        """The database's new name once it is the template again; None if it was dropped."""
        _pg_admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            with psycopg.connect(_libpq_url(name), autocommit=True) as conn:
                self._empty(conn)
                same = _fingerprint(conn, self._tables) == self._fingerprint
            if same:
                renamed = _fresh_name()
                _pg_admin(f'ALTER DATABASE "{name}" RENAME TO "{renamed}"')
                return renamed
        except psycopg.Error:
            pass  # (a session still connected, a table the test added) dropped below
        _pg_drop(name)
        return None

    def _empty(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        conn.execute("SET lock_timeout = '30s'")
        conn.execute("SET session_replication_role = replica")
        with conn.transaction():
            for table in self._emptied:
                conn.execute(sql.SQL("DELETE FROM {}").format(table))
            for sequence, value, called in self._sequences:
                conn.execute("SELECT setval(%s::regclass, %s, %s)", (sequence, value, called))
        conn.execute("RESET session_replication_role")
        if self._emptied:
            conn.execute(sql.SQL("VACUUM {}").format(sql.SQL(", ").join(self._emptied)))


_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1
"""

_SEQUENCES = """
SELECT format('%I.%I', schemaname, sequencename), coalesce(last_value, start_value),
       last_value IS NOT NULL
FROM pg_sequences
"""

_SCHEMA_FINGERPRINT = """
WITH ns AS (
  SELECT oid, nspname FROM pg_namespace
  WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
), parts AS (
  SELECT 'schema ' || nspname FROM ns
  UNION ALL
  SELECT format('relation %s.%s %s', ns.nspname, c.relname, c.relkind)
  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
  UNION ALL
  SELECT format('column %s.%s %s %s %s', a.attrelid::regclass, a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull,
                pg_get_expr(d.adbin, d.adrelid))
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT format('constraint %s.%s %s', c.conrelid::regclass, c.conname,
                pg_get_constraintdef(c.oid))
  FROM pg_constraint c JOIN ns ON ns.oid = c.connamespace
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN ns ON ns.oid = c.relnamespace
  UNION ALL
  SELECT format('trigger %s %s', pg_get_triggerdef(t.oid), t.tgenabled)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON ns.oid = c.relnamespace
  WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'function ' || pg_get_functiondef(p.oid)
  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace WHERE p.prokind IN ('f', 'p')
  UNION ALL
  SELECT format('type %s.%s %s', ns.nspname, t.typname, t.typtype)
  FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
  UNION ALL
  SELECT format('enum %s %s %s', e.enumtypid::regtype, e.enumsortorder, e.enumlabel)
  FROM pg_enum e
  UNION ALL
  SELECT format('view %s.%s %s', schemaname, viewname, definition) FROM pg_views
  WHERE schemaname IN (SELECT nspname FROM ns)
  UNION ALL
  SELECT format('sequence %s.%s %s', schemaname, sequencename, last_value) FROM pg_sequences
  UNION ALL
  SELECT 'extension ' || extname FROM pg_extension
  UNION ALL
  SELECT 'setting ' || array_to_string(setconfig, ' ') FROM pg_db_role_setting
  WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT md5(string_agg(p, E'\\n' ORDER BY p)) FROM parts AS t(p)
"""


def _has_rows(conn: psycopg.Connection[tuple[object, ...]], table: sql.Identifier) -> bool:
    row = conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(table)).fetchone()
    return bool(row and row[0])


def _fingerprint(
    conn: psycopg.Connection[tuple[object, ...]], tables: list[sql.Identifier]
) -> tuple[object, ...]:
    """The schema's fingerprint and the rows of every table (none for most)."""
    schema = conn.execute(_SCHEMA_FINGERPRINT).fetchone()
    rows = [
        conn.execute(
            sql.SQL("SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM {} AS t").format(
                table
            )
        ).fetchone()
        for table in tables
    ]
    return (schema, *rows)


def _configure(name: str) -> None:
    """Commits do not wait for the WAL to reach the disk (a few milliseconds each on a busy
    disk, thousands of commits a run): what a commit shows every session is the same, only a
    crash of the server could lose the last ones, and nothing a test checks survives that."""
    _pg_admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off')


def _fresh_name() -> str:
    return f"kassa_t_{uuid.uuid4().hex[:16]}"


def _libpq_url(name: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def _pg_drop(name: str) -> None:
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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

    def release(self, db: Database) -> None:
        """Done with `db` before the test ends (a property test's example): recycle it now."""
        for made in self._made:
            if made[0] is db:
                self._made.remove(made)
                self._release(*made)
                return
        raise ValueError("not a database of this factory")

    def _release(self, db: Database, url: str) -> None:
        db.dispose()
        if self.provisioner is not None:
            self.provisioner.give_back(url.rsplit("/", 1)[1])

    def cleanup(self) -> None:
        for made in self._made:
            self._release(*made)
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
    _configure(name)  # for the recycler's fingerprint, which includes the settings
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
def pg_recycler(pg_template: str) -> PgRecycler:
    """A recycler of the template's databases, for tests of the recycling itself."""
    return PgRecycler(pg_template)


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
    test from starting last while the other workers sit idle (longest first). Slow tests that
    say how long they take (`@pytest.mark.slow(seconds=110)`, measured with `--durations` on
    a quiet machine) go longest first among the slow ones: a two-minute test that starts after
    ten half-minute ones ends the run late. A plain `pytest` keeps the written order.
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


def _longest_first(item: pytest.Item) -> tuple[int, float]:
    slow = item.get_closest_marker("slow")
    if slow is not None:
        return 0, -float(slow.kwargs.get("seconds", 0))
    if item.get_closest_marker("chain") is not None:
        return 1, 0
    return 2, 0
