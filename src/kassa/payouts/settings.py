"""Settings of refunds and withdrawals: review, the worker, the rails, and the fee estimates
quotes use. (Which policy decides is ``[policy]``, `kassa.policy.settings`.)

A quote prices the chain fee of one payout transaction from the chain itself
(`kassa.payouts.fee_quotes`, tuned by ``[payouts.fee_quotes]``: the safety margin, how long an
answer is reused, how long a node may take, and the gas and energy figures of token transfers).
``[payouts.network_fee_estimates]`` are only the fallback when the node cannot answer: per payout
asset, in the chain's fee asset (BTC for BTC, ETH for ETH and USDT-ERC20, TRX for TRX and
USDT-TRC20). The payout worker measures the real fee when it signs; the difference goes to the
network-fee account.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kassa.assets import fee_asset_of, on_chain
from kassa.money import Asset, Money, asset

DEFAULT_FEE_ESTIMATES: dict[str, str] = {
    "BTC": "0.00002",  # ~140 vB at ~14 sat/vB
    "ETH": "0.00042",  # 21 000 gas at 20 gwei
    "USDT-ERC20": "0.0013",  # ~65 000 gas at 20 gwei, paid in ETH
    "TRX": "1.1",  # bandwidth, plus account activation on a new address
    "USDT-TRC20": "13.9",  # ~29 650 energy at 420 sun, plus bandwidth, paid in TRX
}


class ReviewSettings(BaseModel):
    """Which requests wait for an operator, and how much an account may take out per day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold_usd: str = Field(default="1000.00", description="Above this, an operator reviews")
    dual_approval_usd: str | None = Field(
        default="10000.00", description="Above this, two different operators must approve"
    )
    new_destinations: bool = Field(
        default=True, description="Review payouts to an address never paid before"
    )
    max_count_per_day: int = Field(default=10, ge=1, description="Requests per account per day")
    max_usd_per_day: str = Field(default="5000.00", description="Requested USD per account/day")

    @field_validator("threshold_usd", "dual_approval_usd", "max_usd_per_day")
    @classmethod
    def _usd(cls, value: str | None) -> str | None:
        if value is not None:
            Money.parse(value, asset("USD"))
        return value


class WorkerSettings(BaseModel):
    """How the payout worker claims, retries and replaces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lease_seconds: int = Field(default=120, ge=5, description="A claim lapses after this")
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    retry_seconds: int = Field(default=30, ge=1, description="Wait before retrying a payout")
    stuck_after_seconds: int = Field(
        default=900, ge=1, description="Unconfirmed this long: replace with a higher fee"
    )
    bump_percent: int = Field(default=25, ge=10, le=500, description="Fee raise per replacement")
    batch_size: int = Field(default=20, ge=1, le=200, description="Payouts claimed per round")
    node_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="A node request slower than this fails; the payout waits and is retried",
    )


class BtcPayoutSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    target_blocks: int = Field(default=6, ge=1, le=1008, description="estimatesmartfee target")
    fallback_sat_per_kvb: int = Field(
        default=10_000, ge=1_000, description="Fee rate when the node has no estimate (regtest)"
    )
    max_sat_per_kvb: int = Field(default=500_000, ge=1_000, description="Never pay above this")
    batching: bool = Field(default=False, description="Pay several BTC payouts in one tx")
    max_batch: int = Field(default=20, ge=1, le=500)
    min_confirmations_to_spend: int = Field(
        default=1, ge=1, description="Hot wallet coins need this many to be spent"
    )


class EthPayoutSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    priority_fee_wei: int = Field(default=1_500_000_000, ge=0, description="Tip per gas")
    base_fee_multiplier: int = Field(
        default=2, ge=1, le=10, description="Fee cap = base fee × this + tip"
    )
    max_fee_per_gas_wei: int = Field(default=500_000_000_000, ge=1, description="Never above")
    usdt_gas_limit: int = Field(
        default=100_000, ge=21_000, description="Gas limit of a USDT transfer (estimate × 1.3)"
    )


class TronPayoutSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expiration_seconds: int = Field(default=60, ge=10, le=86_400)
    trc20_fee_limit_sun: int = Field(default=50_000_000, ge=1, description="Energy burn cap")


class FeeQuoteSettings(BaseModel):
    """How quotes read the network fee from the chain (`kassa.payouts.fee_quotes`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    live: bool = Field(
        default=True, description="Ask the chain; false: always the configured estimates"
    )
    safety_margin_percent: int = Field(
        default=20, ge=0, le=500, description="Added to the chain's figure, rounded up"
    )
    cache_seconds: float = Field(
        default=5.0, ge=0, le=300, description="A node's answer is reused this long"
    )
    timeout_seconds: float = Field(
        default=3.0, gt=0, le=60, description="A node slower than this: the fallback is used"
    )
    eth_fee_history_blocks: int = Field(
        default=10, ge=1, le=1024, description="Blocks of eth_feeHistory the tip is read from"
    )
    eth_tip_percentile: int = Field(
        default=50, ge=0, le=100, description="Percentile of the tips those blocks paid"
    )
    erc20_transfer_gas: int = Field(
        default=35_000, ge=21_000, description="Gas of a USDT transfer to a current holder"
    )
    erc20_transfer_gas_new_holder: int = Field(
        default=52_000, ge=21_000, description="Gas of a USDT transfer to an empty balance"
    )
    trc20_transfer_energy: int = Field(
        default=14_650, ge=1, description="Energy of a USDT transfer to a current holder"
    )
    trc20_transfer_energy_new_holder: int = Field(
        default=29_650, ge=1, description="Energy of a USDT transfer to an empty balance"
    )


class QuoteSettings(BaseModel):
    """``[payouts.quotes]``: how long a quote binds, and how far the real fee may rise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttl_seconds: int = Field(
        default=600, ge=10, le=86_400, description="A quote can be used this long"
    )
    fee_wait_percent: int = Field(
        default=200,
        ge=100,
        description="A payout whose real network fee is above this percentage of the quoted "
        "fee waits for an operator (the house pays the difference once approved)",
    )


class PayoutSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    review: ReviewSettings = Field(default_factory=ReviewSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    btc: BtcPayoutSettings = Field(default_factory=BtcPayoutSettings)
    eth: EthPayoutSettings = Field(default_factory=EthPayoutSettings)
    tron: TronPayoutSettings = Field(default_factory=TronPayoutSettings)
    fee_quotes: FeeQuoteSettings = Field(default_factory=FeeQuoteSettings)
    quotes: QuoteSettings = Field(default_factory=QuoteSettings)

    network_fee_estimates: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_FEE_ESTIMATES),
        description="Per payout asset, the chain fee a quote charges when the node cannot "
        "answer, in the chain's fee asset",
    )

    hot_wallet_low: dict[str, str] = Field(
        default_factory=dict,
        description="Per payout asset, the hot wallet balance (whole units) below which "
        "hot_wallet.low fires once (hot_wallet.recovered when it is back); unset: not watched",
    )

    @field_validator("hot_wallet_low")
    @classmethod
    def _low(cls, value: dict[str, str]) -> dict[str, str]:
        for code, text in value.items():
            if not on_chain(code):
                raise ValueError(f"{code!r} is not a payout asset")
            Money.parse(text, asset(code))
        return value

    def hot_wallet_thresholds(self) -> dict[Asset, Money]:
        return {
            asset(code): Money.parse(text, asset(code))
            for code, text in self.hot_wallet_low.items()
        }

    @field_validator("network_fee_estimates")
    @classmethod
    def _estimates(cls, value: dict[str, str]) -> dict[str, str]:
        for code, text in value.items():
            if not on_chain(code):
                raise ValueError(f"{code!r} is not a payout asset")
            Money.parse(text, fee_asset_of(asset(code)))
        return value

    def fee_estimate(self, code: str) -> Money:
        """The quoted chain fee of one payout in `code`, in the chain's fee asset."""
        text = self.network_fee_estimates.get(code, DEFAULT_FEE_ESTIMATES[code])
        return Money.parse(text, fee_asset_of(asset(code)))


class SignerSettings(BaseModel):
    """Where payout signing keys come from (``[signer]``); the signer itself is
    `kassa.payouts.signer`, which only the payout worker imports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(default="local", description="Only 'local' ships with Kassa")
    key_dir: Path | None = Field(
        default=None, description="Encrypted key files <chain>.json; default <data_dir>/signer"
    )
    password_env: str = Field(
        default="KASSA_SIGNER_PASSWORD", description="Variable holding the key files' password"
    )
    password_file: Path | None = Field(
        default=None,
        description="A file holding the password: the devnet's (mode 0600), or a container "
        "secret (docker-compose.yml); the variable wins when both are set",
    )
