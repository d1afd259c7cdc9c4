"""Statements sent straight to the database driver, inside the caller's unit of work.

For the few statements of a hot path (the usage POST runs a dozen per request), SQLAlchemy's
execute path — the compiled-statement cache lookup, the execution context, result metadata and
per-column type processing — costs more client CPU than the statement itself. `rows` sends SQL
written once per dialect, with the driver's own placeholders (psycopg's ``%(name)s``, sqlite3's
``:name``), on the connection the caller's SQLAlchemy transaction already holds: same
transaction, same savepoints. PostgreSQL statements are prepared on the server.

The values go as the database stores them through our column types: on PostgreSQL psycopg
adapts UUIDs, aware datetimes and ints itself; on SQLite a UUID is 32 hex digits (`uuid_text`),
a time is naive UTC text in SQLAlchemy's format (`time_text`), an amount is decimal text
(`str`), and what comes back is read the same way (`read_time`). A failure is raised as
SQLAlchemy's exception, like every other statement's.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def rows(conn: Connection, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run `sql` on the driver connection of `conn` (in its transaction); the rows it returns,
    if any."""
    return _run(conn, sql, params, many=False)


def many(conn: Connection, sql: str, params: Sequence[Mapping[str, Any]]) -> None:
    """Run `sql` once per parameter set (an executemany) on the driver connection of `conn`."""
    _run(conn, sql, params, many=True)


def pipelined(
    conn: Connection, calls: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[list[tuple[Any, ...]]]:
    """Run each `(sql, params)` of `calls` in order, in the transaction of `conn`, and return
    each one's rows. On PostgreSQL they go in one psycopg pipeline: sent without waiting for
    each answer, so a batch costs one round trip instead of one per call. A failure raises
    the first failing call's error (as SQLAlchemy's exception) and leaves the transaction
    aborted, as a failed statement does; the calls after it did not run. SQLite runs them one
    by one (it has no round trips to save)."""
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        return [_run(conn, sql, params, many=False) for sql, params in calls]
    if not calls:
        return []
    # What SQLAlchemy's listeners see: one call, as of an executemany.
    conn.dispatch.before_cursor_execute(
        conn, None, calls[0][0], [params for _, params in calls], None, True
    )
    cursors: list[psycopg.Cursor[Any]] = []
    try:
        with driver.pipeline():
            for sql, params in calls:
                cursor = driver.cursor()
                cursors.append(cursor)
                cursor.execute(sql, params, prepare=True)
        return [cursor.fetchall() if cursor.description is not None else [] for cursor in cursors]
    except psycopg.Error as failed:
        if driver.broken:
            conn.invalidate(failed)
        raise DBAPIError.instance(calls[0][0], None, failed, psycopg.Error) from failed
    finally:
        for cursor in cursors:
            cursor.close()


def command(conn: Connection, sql: str) -> None:
    """Run a statement that takes no parameters and returns no rows (``SAVEPOINT name``,
    ``RELEASE SAVEPOINT name``…), unprepared, on the driver connection of `conn`."""
    _run(conn, sql, None, many=False, prepare=False)


def _run(
    conn: Connection, sql: str, params: Any, *, many: bool, prepare: bool = True
) -> list[tuple[Any, ...]]:
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection | sqlite3.Connection):
        raise TypeError(f"no direct path for the driver {type(driver).__name__}")
    cursor = driver.cursor()
    try:
        # What SQLAlchemy's listeners see of every statement (statement counts, tracing).
        conn.dispatch.before_cursor_execute(conn, cursor, sql, params, None, many)
        if many:
            cursor.executemany(sql, params)
            return []
        if params is None:
            cursor.execute(sql)
        elif isinstance(cursor, psycopg.Cursor):
            cursor.execute(sql, params, prepare=prepare)
        else:
            cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description is not None else []
    except (psycopg.Error, sqlite3.Error) as failed:
        if isinstance(driver, psycopg.Connection) and driver.broken:
            conn.invalidate(failed)
        base = psycopg.Error if isinstance(failed, psycopg.Error) else sqlite3.Error
        raise DBAPIError.instance(sql, params, failed, base) from failed
    finally:
        cursor.close()


def uuid_text(value: uuid.UUID) -> str:
    """A UUID as SQLite stores it (SQLAlchemy's `Uuid` without a native type)."""
    return value.hex


def time_text(value: datetime) -> str:
    """An aware time as SQLite stores it (`kassa.db.types.UtcDateTime`)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass timezone-aware UTC datetimes")
    return value.astimezone(UTC).replace(tzinfo=None).strftime(_SQLITE_TIME)


def read_time(value: datetime | str) -> datetime:
    """A time read from either database, aware UTC."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def for_sqlite(sql: str) -> str:
    """`sql` written with psycopg's ``%(name)s`` placeholders, with sqlite3's ``:name``."""
    return re.sub(r"%\((\w+)\)s", r":\1", sql)
