"""Settings of refunds and withdrawals: which policy decides, and the fee estimates quotes use.

``[policy]`` picks a preset shipped with Kassa (``default``, ``codexkey``, ``codegateway``,
``ticketed-hosting``, ``activkode``) or a policy file, and may override single parameters::

    [policy]
    preset = "codegateway"
    overrides = { refund = { minimum_usd = "5.00" } }

``[payouts.network_fee_estimates]`` are what a quote charges for the chain fee of one payout
transaction, per payout asset, in the chain's fee asset (BTC for BTC, ETH for ETH and
USDT-ERC20, TRX for TRX and USDT-TRC20). The payout worker measures the real fee when it signs;
the difference goes to the network-fee account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kassa.money import Money, asset
from kassa.policy import InvalidPolicy, Policy, load_policy, load_preset, with_overrides
from kassa.policy.facts import CHAIN_OF_ASSET, FEE_ASSET_OF_CHAIN

DEFAULT_FEE_ESTIMATES: dict[str, str] = {
    "BTC": "0.00002",  # ~140 vB at ~14 sat/vB
    "ETH": "0.00042",  # 21 000 gas at 20 gwei
    "USDT-ERC20": "0.0013",  # ~65 000 gas at 20 gwei, paid in ETH
    "TRX": "1.1",  # bandwidth, plus account activation on a new address
    "USDT-TRC20": "13.9",  # ~29 650 energy at 420 sun, plus bandwidth, paid in TRX
}


class PolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = Field(default="default", description="A preset shipped with Kassa")
    file: Path | None = Field(default=None, description="A policy TOML file (instead of preset)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Parameters to change")

    def load(self) -> Policy:
        base = load_policy(self.file) if self.file is not None else load_preset(self.preset)
        policy = with_overrides(base, self.overrides) if self.overrides else base
        rules = policy.activations
        # Spending settles activations one way (expired and cancelled ones go back to the
        # balance, fulfilled ones are final); refuse a policy asking for anything else rather
        # than ignore it silently.
        if not rules.refund_expired or not rules.refund_cancelled or rules.refund_fulfilled:
            raise InvalidPolicy(
                f"policy {policy.name}: [activations] must refund expired and cancelled "
                "activations and not fulfilled ones; other settings are not supported yet",
                source=str(self.file) if self.file is not None else f"preset {self.preset}",
            )
        return policy


class PayoutSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    network_fee_estimates: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_FEE_ESTIMATES),
        description="Per payout asset, the chain fee a quote charges, in the chain's fee asset",
    )

    @field_validator("network_fee_estimates")
    @classmethod
    def _estimates(cls, value: dict[str, str]) -> dict[str, str]:
        for code, text in value.items():
            if code not in CHAIN_OF_ASSET:
                raise ValueError(f"{code!r} is not a payout asset")
            fee_asset = FEE_ASSET_OF_CHAIN[CHAIN_OF_ASSET[asset(code).code]]
            Money.parse(text, fee_asset)
        return value

    def fee_estimate(self, code: str) -> Money:
        """The quoted chain fee of one payout in `code`, in the chain's fee asset."""
        fee_asset = FEE_ASSET_OF_CHAIN[CHAIN_OF_ASSET[asset(code).code]]
        text = self.network_fee_estimates.get(code, DEFAULT_FEE_ESTIMATES[code])
        return Money.parse(text, fee_asset)
