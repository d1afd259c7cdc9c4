"""The `[policy]` settings: a preset or file, overrides, and no setting that would be ignored."""

from __future__ import annotations

import pytest

from kassa.policy import InvalidPolicy
from kassa.policy.settings import PolicySettings


def test_a_preset_with_overrides_loads() -> None:
    policy = PolicySettings(preset="codegateway", overrides={"withdrawal": {"minimum": "25.00"}})
    assert policy.load().name == "codegateway"


def test_an_activation_setting_spending_cannot_honour_is_refused() -> None:
    settings = PolicySettings(overrides={"activations": {"refund_fulfilled": True}})
    with pytest.raises(InvalidPolicy, match="not supported yet"):
        settings.load()
