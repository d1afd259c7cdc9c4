"""Pricing settings (the ``[pricing]`` table of the TOML file, or ``KASSA_PRICING__*``).

The embedded default prices from the ``static`` source, because the demo machine has no internet
and a made-up-looking but configured rate is honest there. Production lists real sources, e.g.
``sources = ["coinbase", "kraken", "bitstamp"]``, ``fallback_sources = ["binance", "coingecko"]``,
``min_sources = 2``, ``candle_sources = ["coinbase", "kraken"]``.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kassa.pricing.model import Symbol
from kassa.pricing.sources import SOURCE_NAMES

DEMO_STATIC_RATES: dict[Symbol, Decimal] = {
    Symbol.BTC: Decimal("60000"),
    Symbol.ETH: Decimal("3000"),
    Symbol.TRX: Decimal("0.25"),
    Symbol.USDT: Decimal("1"),
}


class PricingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[str] = Field(
        default_factory=lambda: ["static"],
        description="Sources asked on every refresh, in order of preference",
    )
    fallback_sources: list[str] = Field(
        default_factory=list,
        description="Asked one by one, in order, while a symbol lacks enough healthy quotes",
    )
    candle_sources: list[str] = Field(
        default_factory=list,
        description="Sources asked for a historical candle when history has no close sample",
    )
    static_rates: dict[Symbol, Decimal] = Field(
        default_factory=lambda: dict(DEMO_STATIC_RATES),
        description="USD per coin served by the `static` source",
    )
    min_sources: int = Field(default=1, ge=1, le=10, description="Agreeing quotes needed")
    max_quote_age_seconds: int = Field(default=120, ge=1, description="Older quotes are stale")
    outlier_band_bps: int = Field(
        default=200, ge=1, le=5000, description="Max distance of a quote from the median, bps"
    )
    spread_bps: int = Field(
        default=0, ge=0, le=1000, description="Taken off the bid and added to the ask, bps"
    )
    usdt_peg_band_bps: int = Field(
        default=100, ge=0, le=5000, description="USDT is valued at 1.00 while within this band"
    )
    max_rate_age_seconds: int = Field(
        default=300, ge=1, description="A current rate older than this is no rate"
    )
    history_tolerance_seconds: int = Field(
        default=300, ge=1, description="How far a stored sample may be from the asked time"
    )
    refresh_interval_seconds: float = Field(default=30, gt=0)
    request_timeout_seconds: float = Field(default=5, gt=0)

    @field_validator("static_rates")
    @classmethod
    def _positive_rates(cls, rates: dict[Symbol, Decimal]) -> dict[Symbol, Decimal]:
        for symbol, rate in rates.items():
            if not rate.is_finite() or rate <= 0:
                raise ValueError(f"static rate for {symbol} must be a positive number, not {rate}")
        return rates

    @model_validator(mode="after")
    def _sources_known(self) -> PricingSettings:
        known = {*SOURCE_NAMES, "static"}
        for name in [*self.sources, *self.fallback_sources, *self.candle_sources]:
            if name not in known:
                raise ValueError(f"unknown rate source {name!r}; known: {', '.join(sorted(known))}")
        if not self.sources:
            raise ValueError("at least one rate source is needed")
        if len({*self.sources, *self.fallback_sources}) != len(self.sources) + len(
            self.fallback_sources
        ):
            raise ValueError("a rate source is listed twice")
        return self
