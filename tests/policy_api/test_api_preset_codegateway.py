"""Policy B (CodeGateway, "Refund Policy", effective June 15, 2026), clause by clause, through the
HTTP API. Every figure is computed by hand in the comments (fees: conftest.FEES).

The clock starts on Friday 20 November 2026, 14:03:11 UTC; top-ups are paid at that instant.
The quiet period of §3 means every test that spends waits five minutes before asking.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from kassa.policy import load_preset

if TYPE_CHECKING:
    from tests.policy_api.conftest import PolicyApi, World

QUIET = timedelta(minutes=5)


@pytest.fixture
def api(world: World) -> PolicyApi:
    return world.app("codegateway")


def test_any_unused_balance_at_any_time_processed_instantly(api: PolicyApi, world: World) -> None:
    """§1: "You may request a refund of any unused balance at any time, with no time
    limitation." §3 Option 1: "Self-service via Dashboard (recommended, processed instantly)".
    Refunds of the unused balance are the way out: the policy offers no withdrawals."""
    api.account("a")
    topup = api.top_up("a", "0.001")  # 0.001 BTC × $60 000 = $60.00
    world.advance(timedelta(days=900))
    world.prices(btc="50000")

    refund = api.ok(api.refund("a", topup["id"]), 201)

    assert api.rule(refund["decision"], "refund_window")["reason"] == "Refunds have no time limit."
    assert (refund["status"], refund["needs_review"], refund["review_due_at"]) == (
        "approved",
        False,
        None,
    )
    # $60 / $50 000 = 120 000 sat; minus 2 000 sat = 118 000 sat, back to the paying wallet.
    assert refund["net_native"] == {"amount": "0.00118", "asset": "BTC"}
    assert refund["destination"] == api.SENDER["btc"]
    api.credit("a", "60.00", "test funds")
    withdrawal = api.withdrawal_quote("a", "50.00")
    assert api.refused(withdrawal) == ["withdrawals_enabled", "withdrawal_asset"]


def test_token_fees_for_services_already_consumed_are_non_refundable(
    api: PolicyApi, world: World
) -> None:
    """§1: "Token fees for services already consumed are non-refundable." $48 of the $60 was
    consumed by API calls; the unused $12 is refundable."""
    api.account("c")
    topup = api.top_up("c", "0.001")  # $60.00
    api.use("c", *["4.00"] * 12)  # twelve calls at $4
    world.advance(QUIET)
    world.prices(btc="50000")

    money = api.money(api.refund_quote("c", topup["id"]))

    # $12 / $50 000 = 24 000 sat; minus 2 000 sat = 22 000 sat.
    assert money["gross_usd"] == "12.00 USD"
    assert money["net_native"] == "0.00022 BTC"


def test_minimum_refundable_amount_per_request_is_usd_2(world: World) -> None:
    """§2: "the minimum refundable amount per refund request is USD 2.00. If your refundable
    balance is below this threshold: You may keep the balance (it never expires); or Wait until
    the balance accumulates to USD 2.00". A 200 sat fee estimate keeps the fee out of the way."""
    api = world.app("codegateway", fees={"BTC": "0.000002"})
    api.account("m")
    topup = api.top_up("m", "0.001")  # $60.00
    api.use("m", "58.01")
    world.advance(QUIET)
    world.prices(btc="50000")

    below = api.refund_quote("m", topup["id"])
    assert api.refused(below) == ["minimum_amount"]
    assert "$1.99 is below the $2.00 minimum" in api.rule(below, "minimum_amount")["reason"]
    # $1.99 / $50 000 = 3 980 sat; minus 200 sat = 3 780 sat: it would pay, yet is too small.
    assert api.money(below)["net_native"] == "0.0000378 BTC"

    api.credit("m", "0.01", "the balance accumulates")
    at = api.refund_quote("m", topup["id"])
    assert at["allowed"] is True
    # $2 / $50 000 = 4 000 sat; minus 200 sat = 3 800 sat.
    assert api.money(at)["net_native"] == "0.000038 BTC"


def test_no_api_calls_in_the_past_5_minutes(api: PolicyApi, world: World) -> None:
    """§3 Option 1 note: "to avoid billing conflicts, you must have made no API calls in the past
    5 minutes". A retry of an already charged batch is no new call and does not restart it."""
    api.account("q")
    topup = api.top_up("q", "0.001")  # $60.00
    first = api.use("q", "1.00")  # at 14:03:11
    world.advance(QUIET - timedelta(seconds=1))  # 14:08:10

    refused = api.problem(api.refund("q", topup["id"]), 409, "refund_refused")

    assert api.refused(refused["decision"]) == ["usage_quiet_period"]
    quiet = api.rule(refused["decision"], "usage_quiet_period")
    assert "a refund needs 5 minutes without usage" in quiet["reason"]
    assert "no API calls in the past 5 minutes" in quiet["clause"]
    call = first["events"][0]["event_id"]
    events = [{"event_id": call, "amount": api.usd("1.00"), "description": "GET /v1"}]
    retried = api.ok(api.post("/v1/accounts/q/usage", {"events": events}))
    assert (retried["charged_events"], retried["duplicate_events"]) == (0, 1)
    assert retried["last_usage_at"] == "2026-11-20T14:03:11Z"

    world.advance(timedelta(seconds=1))  # 14:08:11, five minutes after the call
    refund = api.ok(api.refund("q", topup["id"]), 201)
    # $60 − $1 = $59 at $60 000: 98 333.33 → 98 333 sat; minus 2 000 sat = 96 333 sat.
    assert refund["net_native"] == {"amount": "0.00096333", "asset": "BTC"}


def test_each_top_up_can_be_refunded_only_once(api: PolicyApi, world: World) -> None:
    """§3 Option 1 note: "each top-up can be refunded only once" — even after a partial refund
    of it, and even once the balance holds enough again. A cancelled refund was no refund."""
    api.account("o")
    first = api.top_up("o", "0.001")  # $60.00
    api.use("o", "40.00")
    world.advance(QUIET)
    partial = api.ok(api.refund("o", first["id"]), 201)
    assert partial["gross"] == {"amount": "20.00", "asset": "USD"}  # the unused $20
    second = api.top_up("o", "0.001")  # another $60.00

    again = api.refund_quote("o", first["id"])
    # $60 − $20 refunded = $40 left of the first top-up, and $60 available: only the rule of
    # one refund per top-up stands in the way.
    assert api.refused(again) == ["one_refund_per_topup"]
    assert (
        "each top-up can be refunded only once" in api.rule(again, "one_refund_per_topup")["clause"]
    )
    assert api.money(again)["gross_usd"] == "40.00 USD"
    assert api.refund_quote("o", second["id"])["allowed"] is True

    api.ok(api.post(f"/v1/refunds/{partial['id']}/cancel", {}))
    assert api.refund_quote("o", first["id"])["allowed"] is True


def test_fx_conversion_and_fees_are_borne_by_the_user(api: PolicyApi, world: World) -> None:
    """§4: "Any difference due to bank / payment-provider FX conversion or fees is borne by the
    user." BTC fell from $60 000 to $40 000."""
    api.account("fx")
    topup = api.top_up("fx", "0.001")  # $60.00
    world.advance(timedelta(days=30))
    world.prices(btc="40000")

    money = api.money(api.refund_quote("fx", topup["id"]))

    # $60 / $40 000 = 150 000 sat; minus 2 000 sat = 148 000 sat. The fee is $0.80.
    assert money["net_native"] == "0.00148 BTC"
    assert money["network_fee_usd"] == "0.80 USD"
    assert money["net_usd"] == "59.20 USD"


def test_serious_breach_termination_unused_balance_refundable_minus_handling_costs(
    world: World,
) -> None:
    """§5.1: terminated for serious violations of Acceptable Use — "Fees for services already
    consumed are non-refundable; Unused balance remains refundable, but we reserve the right to
    deduct reasonable investigation / handling costs." The page names no amount (the preset
    deducts none); a deployment sets $10. Either way an operator reviews, within the 5 business
    days of §3 Option 2."""
    states: list[dict[str, Any]] = load_preset("codegateway").to_data()["account_states"]
    assert states[0]["reason"] == "serious_breach"
    states[0]["handling_cost"] = "10.00"
    preset = world.app("codegateway")
    deployment = world.app("codegateway", overrides={"account_states": states})
    preset.account("sb")
    topup = preset.top_up("sb", "0.001")  # $60.00
    preset.set_state("sb", "terminated", "serious_breach", "card testing")
    world.prices(btc="50000")

    free = preset.refund_quote("sb", topup["id"])
    charged = deployment.ok(deployment.refund("sb", topup["id"]), 201)

    assert free["allowed"] is True
    assert preset.money(free)["handling_fee_usd"] == "0.00 USD"
    assert preset.money(free)["net_native"] == "0.00118 BTC"
    assert preset.rule(free, "account_state")["clause"].startswith("§5.1")
    # $60 − $10 = $50 → 100 000 sat; minus 2 000 sat = 98 000 sat.
    assert charged["fees"] == {"amount": "10.00", "asset": "USD"}
    assert charged["net_native"] == {"amount": "0.00098", "asset": "BTC"}
    assert charged["net"] == {"amount": "49.00", "asset": "USD"}
    assert (charged["status"], charged["needs_review"]) == ("pending_review", True)
    # Friday 20 November + 5 business days = Friday 27 November.
    assert charged["review_due_at"] == "2026-11-27T14:03:11Z"


def test_geographic_termination_refundable_within_six_months_then_dormant(
    api: PolicyApi, world: World
) -> None:
    """§5.2: "Within six (6) months of account termination ... you may request a refund of the
    unused balance ... (reactive only)"; "Unused balance remaining unclaimed after six (6)
    months may be handled in accordance with UK 'dormant account' practices ... but you retain
    the right to seek recovery" (an operator may waive). Terminated 20 November 2026 14:03:11:
    the six months end 20 May 2027 14:03:11, 181 days later."""
    api.account("g")
    topup = api.top_up("g", "0.001")  # $60.00
    api.set_state("g", "terminated", "geographic", "service used from a restricted country")
    world.advance(timedelta(days=181))

    last_moment = api.refund_quote("g", topup["id"])
    assert last_moment["allowed"] is True
    assert last_moment["needs_review"] is True
    assert "until 2027-05-20 14:03 UTC" in api.rule(last_moment, "account_state")["reason"]

    world.advance(timedelta(minutes=1))
    refused = api.problem(api.refund("g", topup["id"]), 409, "refund_refused")
    assert api.refused(refused["decision"]) == ["account_state"]
    assert api.rule(refused["decision"], "account_state")["clause"].startswith("§5.2")
    assert refused["decision"]["overridable"] is True  # "the right to seek recovery"


def test_other_suspensions_and_terminations_keep_any_unused_balance_refundable(
    api: PolicyApi,
) -> None:
    """§1: "You may request a refund of any unused balance at any time" — a suspension, or a
    termination at the customer's request, changes nothing (no review: self-service)."""
    for external_id, state, reason in [
        ("s", "suspended", "other"),
        ("t", "terminated", "customer_request"),
    ]:
        api.account(external_id)
        topup = api.top_up(external_id, "0.001")
        api.set_state(external_id, state, reason)

        refund = api.ok(api.refund(external_id, topup["id"]), 201)

        assert (refund["status"], refund["needs_review"]) == ("approved", False)
