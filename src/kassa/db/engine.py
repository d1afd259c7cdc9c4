"""Engines and the unit of work.

SQLite runs in WAL mode with `synchronous=FULL` (every commit is durable) and every transaction
starts with `BEGIN IMMEDIATE`: writers queue on the database lock up front instead of failing
with "database is locked" when a reader later tries to write. Foreign keys are enforced.
A read-only unit (`Database.read_only`) starts with `BEGIN DEFERRED` instead: it reads a WAL
snapshot and never waits for the write lock.

Within one process, the units of work on a SQLite database also take turns on a lock of the
`Database` before `BEGIN IMMEDIATE` (`Database.writer_turn`). SQLite's own wait for its write
lock is a busy handler that sleeps and retries, up to 100 ms a nap: with many threads queued,
each wakes late, the lock sits idle between holders and the slowest waiters see seconds. A
thread waiting on the Python lock is woken the moment the previous unit has committed, so the
database's lock is passed on at once; other processes still meet SQLite's lock as before.

PostgreSQL runs READ COMMITTED; the ledger takes row locks in a fixed order (account id).

The SQLite file and the directories made for it are created for their owner only (0600 and
0700, whatever the umask): they hold the books and the API key hashes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from kassa.errors import KassaError

SQLITE_BUSY_TIMEOUT_MS = 30_000
_READ_ONLY = "kassa_read_only"


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            create_private_file(Path(database))
        engine = create_engine(
            parsed,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=pool_size,
        )
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # No pre-ping: it costs a round trip per unit of work. A connection the server
        # dropped fails one unit of work and is replaced; recycling avoids idle-timeout drops.
        return create_engine(
            parsed, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800
        )
    raise ValueError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql"
    )


def create_private_dir(path: Path) -> None:
    """Create `path` and its missing parents readable by the owner only (0700), whatever the
    umask; a directory that exists already keeps its mode (the operator chose it)."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # created meanwhile by someone else: theirs
        os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask


def create_private_file(path: Path) -> None:
    """Create an empty `path` (and its directory) readable by the owner only (0600) unless it
    exists. SQLite then opens the file as it is, and gives its -wal and -shm files the same
    mode: the books are not left world-readable by a permissive umask."""
    create_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is masked by the umask too
    finally:
        os.close(fd)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN IMMEDIATE below is ours.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A read-only unit (`Database.read_only`) reads a WAL snapshot without the write lock.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


class WriterTurnTimeout(OperationalError):
    """A unit of work waited longer than the busy timeout for its turn to write (SQLite)."""


class Database:
    """An engine plus the rule that the entry point owns the transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Re-entrant: a thread that opens a second unit inside its first meets SQLite's own
        # lock, and its busy timeout, exactly as it did before the turns were taken.
        self._writers = threading.RLock() if engine.dialect.name == "sqlite" else None

    @contextmanager
    def writer_turn(self) -> Iterator[None]:
        """Hold this process's turn to write (SQLite; nothing on PostgreSQL) while the block
        runs a unit of work that may write, from before its BEGIN to after its COMMIT."""
        if self._writers is None:
            yield
            return
        if not self._writers.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise WriterTurnTimeout(
                "BEGIN IMMEDIATE",
                None,
                TimeoutError(f"no turn to write within {SQLITE_BUSY_TIMEOUT_MS} ms"),
            )
        try:
            yield
        finally:
            self._writers.release()

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10) -> Database:
        return cls(make_engine(url, pool_size=pool_size))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One unit of work: commits on success and on a recorded refusal (so the refusal
        stored under an idempotency key survives); rolls back on any other exception."""
        with self.writer_turn(), self.engine.connect() as conn:
            outer = conn.begin()
            try:
                yield conn
            except KassaError as error:
                if error.recorded:
                    outer.commit()
                else:
                    outer.rollback()
                raise
            except BaseException:
                outer.rollback()
                raise
            outer.commit()

    @contextmanager
    def read_only(self) -> Iterator[Connection]:
        """A unit that only reads (metrics scrapes): one consistent snapshot that takes no
        write lock on SQLite (a deferred transaction) and that PostgreSQL refuses to write in;
        always rolled back."""
        with self.engine.connect().execution_options(**{_READ_ONLY: True}) as conn:
            outer = conn.begin()
            try:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(
                        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                    )
                yield conn
            finally:
                outer.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
