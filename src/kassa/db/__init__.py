"""Database plumbing: engines for SQLite and PostgreSQL, column types, the shared metadata."""

from kassa.db.engine import Database, make_engine
from kassa.db.metadata import metadata
from kassa.db.types import Amount, Price, UtcDateTime

__all__ = ["Amount", "Database", "Price", "UtcDateTime", "make_engine", "metadata"]
