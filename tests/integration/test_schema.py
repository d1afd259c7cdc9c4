"""The schema the migrations build equals the models, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kassa.db import Database
from kassa.db.migrate import current_revision, head_revision
from kassa.schema import metadata


def test_migrated_schema_equals_models(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_database_is_at_head_revision(db: Database) -> None:
    assert current_revision(db.engine) == head_revision()
