"""Settings of the finance reports (``[reports]``): the time zone the worker's daily report
counts days in, and whether it writes one."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ReportSettings"]


class ReportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: str = Field(
        default="UTC", description="IANA time zone of the report days (the daily report's day)"
    )
    daily: bool = Field(
        default=True,
        description="The worker writes yesterday's activity report (CSV and HTML) into "
        "<data_dir>/reports and records the operator event report.ready",
    )
    daily_check_seconds: int = Field(
        default=300, ge=1, description="How often the worker looks whether the file is due"
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value
