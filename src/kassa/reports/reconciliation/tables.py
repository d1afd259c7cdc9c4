"""Reconciliation's own rows (migration 0015): the breaks it tracks across runs, and its runs.

A break is identified by ``break_key`` (class, chain, asset, object): the same discrepancy found
by the next run updates the same row, so its ``first_seen_at`` says how long it has been open.
Amount columns are signed minor units of the break's ``asset`` (or plain counts where the asset
is empty).
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Index, Integer, String, Table, Text, Uuid

from kassa.db.metadata import metadata
from kassa.db.types import Amount, BigId, UtcDateTime

reconciliation_break = Table(
    "reconciliation_break",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("break_key", String(400), nullable=False, unique=True, comment="class|chain|asset|id"),
    Column("leg", String(16), nullable=False, comment="ledger, records, chains or solvency"),
    Column("class", String(48), nullable=False, comment="What kind of discrepancy"),
    Column("chain", String(8), nullable=True),
    Column("asset", String(16), nullable=True),
    Column("object_id", String(200), nullable=False, comment="The record, account or address"),
    Column("expected", Amount, nullable=True, comment="Minor units of `asset` (or a count)"),
    Column("actual", Amount, nullable=True),
    Column("difference", Amount, nullable=True, comment="actual - expected"),
    Column("detail", Text, nullable=False, comment="What was found, in words"),
    Column("status", String(16), nullable=False, comment="new, persisting or resolved"),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("last_run_id", Uuid, nullable=False, comment="The run that last changed it"),
    CheckConstraint("status IN ('new', 'persisting', 'resolved')", name="status"),
    Index("ix_reconciliation_break_status", "status"),
)

reconciliation_run = Table(
    "reconciliation_run",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("trigger", String(32), nullable=False, comment="cli, api or worker"),
    Column("new_breaks", Integer, nullable=False),
    Column("persisting_breaks", Integer, nullable=False),
    Column("resolved_breaks", Integer, nullable=False),
    Column("summary", Text, nullable=False, comment="The run's report (JSON)"),
    Index("ix_reconciliation_run_started_at", "started_at"),
)
