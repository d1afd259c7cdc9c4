"""``[reconciliation]``: the worker's daily run."""

from __future__ import annotations

from datetime import time

from pydantic import BaseModel, Field


class ReconciliationSettings(BaseModel):
    daily: bool = Field(
        default=True,
        description="The worker reconciles once a day and writes the report into the data "
        "directory",
    )
    at: time = Field(
        default=time(0, 30),
        description="Time of day (UTC) after which the worker reconciles the day before",
    )
    check_interval_seconds: float = Field(
        default=60, gt=0, description="How often the worker looks whether a day is due"
    )
