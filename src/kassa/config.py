"""Settings, read once at an entry point (CLI command, app factory) and passed down.

Sources, strongest first: `KASSA_*` environment variables, then an optional TOML file (given
with `--config` or `KASSA_CONFIG_FILE`), then defaults. The embedded default is a SQLite file in
the data directory; a `postgresql+psycopg://…` URL selects PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from kassa.deposits.settings import ChainsSettings
from kassa.payouts.settings import PayoutSettings, SignerSettings
from kassa.policy.settings import PolicySettings
from kassa.pricing.settings import PricingSettings
from kassa.reports.reconciliation.settings import ReconciliationSettings
from kassa.reports.settings import ReportSettings
from kassa.webhooks.settings import WebhookSettings


class MetricsSettings(BaseModel):
    """``[metrics]``: the Prometheus endpoint ``GET /metrics`` (docs/operations.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Serve GET /metrics")
    token: str | None = Field(
        default=None,
        min_length=16,
        description="When set, a scrape must send 'Authorization: Bearer <token>'; unset, "
        "/metrics is open to whoever reaches the port",
    )
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`kassa worker`, `kassa watch` and `kassa payout-worker` serve their own "
        "metrics at GET /metrics on this port (on `host`); unset, they serve none "
        "(`--metrics-port` sets it per command)",
    )


class LoggingSettings(BaseModel):
    """``[logging]``: how the processes write their log lines (docs/operations.md, Logs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["text", "json"] = Field(
        default="text",
        description="text: one readable line each; json: one JSON object a line (time, level, "
        "logger, message and the request, payout, deposit or account it is about)",
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="The least severe level written"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KASSA_", env_nested_delimiter="__", extra="forbid"
    )

    data_dir: Path = Field(default=Path("data"), description="Where the SQLite file and state live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/kassa.sqlite3"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    database_threads: int = Field(
        default=4,
        ge=1,
        le=200,
        description="How many requests of the database-only routes (usage, holds, accounts, "
        "activations, account states) run their database work at once in one API process; "
        "the others wait their turn on the event loop. More is not faster: the threads share "
        "one interpreter lock (docs/benchmarks.md)",
    )
    hold_sweep_interval_seconds: int = Field(
        default=15, ge=1, description="How often the worker expires due holds"
    )
    pricing: PricingSettings = Field(
        default_factory=PricingSettings, description="Rate sources and rules ([pricing])"
    )
    chains: ChainsSettings = Field(
        default_factory=ChainsSettings, description="Deposit chains ([chains.btc] …)"
    )
    policy: PolicySettings = Field(
        default_factory=PolicySettings,
        description="The refund and withdrawal policy ([policy]: preset or file, overrides)",
    )
    payouts: PayoutSettings = Field(
        default_factory=PayoutSettings,
        description="Payout review, worker, per-chain fee settings and quote fee estimates "
        "([payouts])",
    )
    signer: SignerSettings = Field(
        default_factory=SignerSettings, description="Where payout signing keys come from"
    )
    webhooks: WebhookSettings = Field(
        default_factory=WebhookSettings,
        description="Webhook deliveries: retries, timeouts, rotation, reachable addresses",
    )
    reports: ReportSettings = Field(
        default_factory=ReportSettings,
        description="Finance reports ([reports]: time zone, the worker's daily report)",
    )
    devnet: bool | None = Field(
        default=None,
        description="true: the development network (local chains, development keys, the "
        "movable scenario clock and POST /v1/admin/clock); false: real networks. Unset means "
        "false, except that `kassa up` on the embedded SQLite database chooses the devnet "
        "and says so",
    )
    reconciliation: ReconciliationSettings = Field(
        default_factory=ReconciliationSettings,
        description="The worker's daily reconciliation ([reconciliation]: daily, at)",
    )
    metrics: MetricsSettings = Field(
        default_factory=MetricsSettings,
        description="Prometheus metrics at GET /metrics ([metrics]: enabled, token, and the "
        "worker processes' port)",
    )
    logging: LoggingSettings = Field(
        default_factory=LoggingSettings,
        description="Log lines ([logging]: format text or json, level)",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="Largest request body accepted; larger ones are refused with 413 before "
        "they are read (1 MiB holds a usage batch of 1 000 events with ASCII descriptions)",
    )

    @property
    def webhook_settings(self) -> WebhookSettings:
        """``[webhooks]`` as deliveries use them: the devnet may also reach loopback."""
        return self.webhooks.with_loopback() if self.devnet else self.webhooks

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kassa.sqlite3').resolve()}"


_CONFIG_FILE: Path | None = None


class _FileSettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if _CONFIG_FILE is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=_CONFIG_FILE))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Environment over file over defaults; `overrides` (from CLI flags) over everything."""
    global _CONFIG_FILE
    path = config_file or (
        Path(os.environ["KASSA_CONFIG_FILE"]) if os.environ.get("KASSA_CONFIG_FILE") else None
    )
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    _CONFIG_FILE = path
    try:
        loaded = _FileSettings(**{k: v for k, v in overrides.items() if v is not None})
    finally:
        _CONFIG_FILE = None
    return Settings.model_validate(loaded.model_dump())
