"""The ``clock_offset`` table: one row, the seconds a shifted clock runs ahead of the database.

Migration 0005 creates it, so its definition belongs to the product schema (the schema test
compares the models with what the migrations build). Only the devnet's scenario clock
(`kassa_dev.scenario.ScenarioClock`, a `kassa.clock.MovableClock`) reads and writes it; the
product's own clocks never do.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, Table

from kassa.db.metadata import metadata

clock_offset = Table(
    "clock_offset",
    metadata,
    Column("id", Integer, primary_key=True, comment="Always 1: one offset per database"),
    Column("offset_seconds", Integer, nullable=False, comment="Seconds added to database time"),
)
