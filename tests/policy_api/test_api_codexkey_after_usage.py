"""Issue 14 item 3 through the HTTP API: `codexkey` reads "the balance has not been spent"
strictly. After a $60 top-up and $0.01 of usage its refund is refused (it used to allow $59.99);
the product default, reading it leniently, refunds the unspent rest of the same history.

Fees and the clock: tests/policy_api/conftest.py (BTC fee 2 000 sat; top-ups paid "now").
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.policy_api.conftest import World


def test_codexkey_refuses_a_refund_after_one_cent_of_usage(world: World) -> None:
    world.prices(btc="60000")
    api = world.app("codexkey")
    api.account("k")
    topup = api.top_up("k", "0.001")  # 0.001 BTC × $60 000 = $60.00
    world.advance(timedelta(minutes=5))
    api.use("k", "0.01")

    refused = api.problem(api.refund("k", topup["id"]), 409, "refund_refused")

    decision = refused["decision"]
    assert api.refused(decision) == ["refundable_amount"]
    rule = api.rule(decision, "refundable_amount")
    assert "already been used to make API requests" in rule["clause"]
    assert "usage was charged to the balance at or after that" in rule["reason"]
    assert "not even the unused rest of $59.99" in rule["reason"]
    assert api.available("k") == "59.99"  # nothing reserved


def test_codexkey_refunds_when_the_usage_came_before_the_top_up(world: World) -> None:
    world.prices(btc="60000")
    api = world.app("codexkey")
    api.account("k", funds="1.00")
    api.use("k", "0.01")  # spends the earlier balance
    world.advance(timedelta(minutes=5))
    topup = api.top_up("k", "0.001")  # $60.00

    decision = api.refund_quote("k", topup["id"])

    assert decision["allowed"] is True
    assert api.money(decision)["gross_usd"] == "60.00 USD"
    assert "was before this top-up was paid" in api.rule(decision, "refundable_amount")["reason"]


def test_the_default_policy_refunds_the_unspent_rest_of_the_same_history(world: World) -> None:
    world.prices(btc="60000")
    api = world.app("default")
    api.account("d")
    topup = api.top_up("d", "0.001")  # $60.00
    world.advance(timedelta(minutes=5))
    api.use("d", "0.01")
    world.prices(btc="50000")

    refund = api.ok(api.refund("d", topup["id"]), 201)

    # $59.99 / $50 000 = 119 980 sat; minus 2 000 sat = 117 980 sat.
    assert refund["gross"] == {"amount": "59.99", "asset": "USD"}
    assert refund["net_native"] == {"amount": "0.0011798", "asset": "BTC"}
