"""Disputes and chargebacks under the presets that speak of them (issue 14, item 2), through the
HTTP API: ticketed-hosting's "no … active charge backs" and its chargeback that "will reset your
account balance to any amount it was before the payment"; activkode's claim windows (top-up
errors within 7 days, activation disputes within 30 days), each tested one minute either side.

The clock starts on Friday 20 November 2026, 14:03:11 UTC; top-ups are paid at that instant.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kassa.chains.network import Chain

if TYPE_CHECKING:
    import httpx2
    from tests.policy_api.conftest import PolicyApi, World


def _open(api: PolicyApi, external_id: str, subject: str, subject_id: str) -> httpx2.Response:
    body = {
        "external_id": external_id,
        "subject": subject,
        "subject_id": subject_id,
        "reason": "customer ticket",
    }
    return api.post("/v1/admin/disputes", body)


def _resolve(api: PolicyApi, dispute_id: str, outcome: str, note: str) -> dict[str, Any]:
    body = {"outcome": outcome, "note": note}
    return api.ok(api.post(f"/v1/admin/disputes/{dispute_id}/resolve", body))


def test_ticketed_hosting_refuses_a_refund_while_a_dispute_is_open_and_allows_it_after(
    world: World,
) -> None:
    """ "There must be no pending refund requests or active charge backs with the payment
    processor in progress.\""""
    api = world.app("ticketed-hosting")
    api.account("c")
    topup = api.top_up("c", "0.001")  # $60.00
    dispute = api.ok(_open(api, "c", "deposit", topup["id"]), 201)

    refused = api.problem(api.refund("c", topup["id"]), 409, "refund_refused")
    assert api.refused(refused["decision"]) == ["no_open_dispute"]

    _resolve(api, dispute["id"], "rejected", "the payment was right")
    ticket = api.ok(api.refund("c", topup["id"]), 201)
    assert ticket["status"] == "pending_review"


def test_ticketed_hosting_chargeback_after_30_of_50_spent_leaves_minus_30_and_freezes(
    world: World,
) -> None:
    """ "A chargeback will reset your account balance to any amount it was before the payment"
    — $0 before a $50 top-up of which $30 was spent: −$30, and below zero the account is frozen
    (docs/domain.md §4): spending is refused."""
    api = world.app("ticketed-hosting")
    world.prices(btc="50000")
    api.account("h")
    topup = api.top_up("h", "0.001")  # 0.001 BTC × $50 000 = $50.00
    api.use("h", "10.00", "20.00")
    assert api.available("h") == "20.00"

    dispute = api.ok(_open(api, "h", "deposit", topup["id"]), 201)
    charged = _resolve(api, dispute["id"], "chargeback", "card chargeback CB-1")

    assert charged["status"] == "charged_back"
    assert [e["to_status"] for e in charged["events"]] == ["open", "charged_back"]
    assert api.available("h") == "-30.00"
    account = api.ok(api.get("/v1/accounts/h"))
    assert account["status"] == "frozen"
    spend = api.post(
        "/v1/accounts/h/usage",
        {"events": [{"event_id": "late", "amount": api.usd("1.00"), "description": "GET"}]},
    )
    api.problem(spend, 409, "account_frozen")


def test_activkode_top_up_errors_are_claimed_within_7_days(world: World) -> None:
    """§7: "If you believe a top-up was made in error, contact us within 7 days." """
    api = world.app("activkode")
    api.account("k")
    early = api.top_up("k", "0.001")
    late = api.top_up("k", "0.001")
    world.advance(timedelta(days=7) - timedelta(minutes=1))
    api.ok(_open(api, "k", "deposit", early["id"]), 201)
    world.advance(timedelta(minutes=2))
    closed = api.problem(_open(api, "k", "deposit", late["id"]), 409, "dispute_window_closed")
    assert "7-day window for a top-up error claim closed" in closed["detail"]
    assert closed["clause"].startswith("§7: If you believe a top-up was made in error")


def test_activkode_activation_disputes_are_raised_within_30_days(world: World) -> None:
    """§7: "Disputes about specific activations should be raised within 30 days of the
    activation date." """
    api = world.app("activkode")
    api.account("k", funds="20.00")
    first, second = api.activate("k", "2.00"), api.activate("k", "3.00")
    for made in (first, second):
        assert api.ok(api.activation("k", made["id"], "fulfil"))["status"] == "fulfilled"
    world.advance(timedelta(days=30) - timedelta(minutes=1))
    api.ok(_open(api, "k", "activation", first["id"]), 201)
    world.advance(timedelta(minutes=2))
    closed = api.problem(_open(api, "k", "activation", second["id"]), 409, "dispute_window_closed")
    assert "30-day window for a dispute claim closed" in closed["detail"]


def test_a_reorg_reversal_shows_in_the_customers_ledger_with_a_memo(world: World) -> None:
    """Issue 14: "the reversal shows in the customer's ledger with no memo" — it now says what
    it reverses and why."""
    api = world.app("default")
    api.account("r")
    api.top_up("r", "0.001")
    world.reorg(Chain.BTC, 1)
    entries = api.ok(api.get("/v1/accounts/r/ledger"))["entries"]
    [reversal] = [e for e in entries if e["kind"] == "reversal"]
    # The watcher's memo names the coins, the chain transaction and the height it left.
    assert reversal["memo"].startswith("reversed: 0.001 BTC deposit, BTC transaction ")
    assert "left the chain at height" in reversal["memo"]


def test_a_policy_may_refuse_a_chargeback_the_balance_cannot_cover(world: World) -> None:
    """`[disputes] chargeback_below_zero = false`: the credit is not taken below zero."""
    api = world.app("ticketed-hosting", overrides={"disputes": {"chargeback_below_zero": False}})
    world.prices(btc="50000")
    api.account("n")
    topup = api.top_up("n", "0.001")  # $50.00
    api.use("n", "30.00")
    dispute = api.ok(_open(api, "n", "deposit", topup["id"]), 201)
    body = {"outcome": "chargeback", "note": "card chargeback CB-2"}
    refused = api.post(f"/v1/admin/disputes/{dispute['id']}/resolve", body)
    api.problem(refused, 409, "insufficient_funds")
    assert api.available("n") == "20.00"
    assert api.ok(api.get(f"/v1/admin/disputes/{dispute['id']}"))["status"] == "open"
