"""The databases under test: a SQLite file in a temporary directory and a fresh PostgreSQL
database, both removed afterwards (also on Ctrl-C), and their durability settings."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from kassa.db import Database
from kassa_dev.bench._signals import interrupts_deferred

SQLITE = "sqlite"
POSTGRES = "postgres"
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

POSTGRES_SETTINGS = (
    "server_version",
    "fsync",
    "synchronous_commit",
    "wal_sync_method",
    "full_page_writes",
    "commit_delay",
    "shared_buffers",
    "max_wal_size",
)
SQLITE_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    """'sqlite' or 'postgres'."""
    url: str
    """SQLAlchemy URL of the bench database."""
    where: str
    """Where it lives, for the report."""


@contextmanager
def sqlite_target() -> Iterator[Target]:
    directory = Path(tempfile.mkdtemp(prefix="kassa-bench-"))
    path = directory / "bench.sqlite3"
    try:
        yield Target(SQLITE, f"sqlite:///{path}", str(path))
    finally:
        with interrupts_deferred():
            shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def postgres_target(admin_url: str) -> Iterator[Target]:
    """Create a fresh database on the server of `admin_url`; drop it on the way out."""
    admin = make_url(admin_url).set(drivername="postgresql")
    admin_text = admin.render_as_string(hide_password=False)
    name = f"kassa_bench_{uuid.uuid4().hex[:12]}"
    created = False
    try:
        _admin_execute(admin_text, "CREATE DATABASE {}", name)
        created = True
        url = admin.set(drivername="postgresql+psycopg", database=name)
        where = f"{admin.host or 'localhost'}:{admin.port or 5432}/{name}"
        yield Target(POSTGRES, url.render_as_string(hide_password=False), where)
    finally:
        with interrupts_deferred():
            _drop_database(admin_text, name, must_succeed=created)


def _drop_database(admin_url: str, name: str, *, must_succeed: bool) -> None:
    """Drop `name`. Also after an interrupted CREATE (it may or may not exist); a failure is
    only an error when the database was surely created."""
    try:
        _admin_execute(admin_url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)
    except psycopg.Error:
        if must_succeed:
            raise


def _admin_execute(admin_url: str, template: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL(template).format(sql.Identifier(database)))


def durability_settings(db: Database) -> dict[str, str]:
    """The settings that decide whether a commit is durable, as the server reports them."""
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            return _postgres_settings(conn)
        return _sqlite_settings(conn)


def _postgres_settings(conn: Connection) -> dict[str, str]:
    return {
        name: str(conn.execute(text(f"SHOW {name}")).scalar_one()) for name in POSTGRES_SETTINGS
    }


def _sqlite_settings(conn: Connection) -> dict[str, str]:
    journal_mode = conn.execute(text("PRAGMA journal_mode")).scalar_one()
    synchronous = int(conn.execute(text("PRAGMA synchronous")).scalar_one())
    busy_timeout = conn.execute(text("PRAGMA busy_timeout")).scalar_one()
    version = conn.execute(text("SELECT sqlite_version()")).scalar_one()
    return {
        "sqlite_version": str(version),
        "journal_mode": str(journal_mode),
        "synchronous": f"{SQLITE_SYNCHRONOUS.get(synchronous, '?')} ({synchronous})",
        "busy_timeout_ms": str(busy_timeout),
        "transactions": "BEGIN IMMEDIATE",
    }


def is_durable(name: str, settings: dict[str, str]) -> bool:
    """Every commit reaches the disk before it is acknowledged."""
    if name == POSTGRES:
        return settings.get("fsync") == "on" and settings.get("synchronous_commit") == "on"
    return settings.get("journal_mode") == "wal" and settings.get("synchronous", "").startswith(
        ("FULL", "EXTRA")
    )
