"""The ``[policy]`` settings: which policy decides refunds and withdrawals.

``[policy]`` picks a preset shipped with Kassa (``default``, ``codexkey``, ``codegateway``,
``ticketed-hosting``, ``activkode``) or a policy file, and may override single parameters::

    [policy]
    preset = "codegateway"
    overrides = { refund = { minimum_usd = "5.00" } }

They live with the policy (not with the payouts) because choosing and loading a policy is the
policy's business; the services that ask it only receive the loaded `Policy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kassa.policy.loading import InvalidPolicy, load_policy, load_preset, with_overrides
from kassa.policy.model import Policy


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
