"""Policy C (a hosting help-centre article, "How to request a refund"), clause by clause, through
the HTTP API. Every figure is computed by hand in the comments (fees: conftest.FEES).

The clock starts on Friday 20 November 2026, 14:03:11 UTC; top-ups are paid at that instant.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from kassa.chains.network import Chain

if TYPE_CHECKING:
    from tests.policy_api.conftest import PolicyApi, World


@pytest.fixture
def api(world: World) -> PolicyApi:
    return world.app("ticketed-hosting")


def test_refund_requests_are_tickets_approved_only_when_all_conditions_are_met(
    api: PolicyApi, world: World
) -> None:
    """How to request: "A refund request can be submitted as a ticket, and will be approved if
    and only if all conditions (see below) are properly met." — every request waits for an
    operator; the article promises no time, so there is no due date. "Note that there is a
    difference between a refund and a withdrawal ... More info on the withdrawal page" — that
    page is not part of this policy: no withdrawal is offered here."""
    api.account("a")
    topup = api.top_up("a", "0.001")  # 0.001 BTC × $60 000 = $60.00
    world.advance(timedelta(days=3))
    world.prices(btc="50000")

    ticket = api.ok(api.refund("a", topup["id"]), 201)

    assert (ticket["status"], ticket["needs_review"], ticket["review_due_at"]) == (
        "pending_review",
        True,
        None,
    )
    assert api.refused(ticket["decision"]) == []
    # $60 / $50 000 = 120 000 sat; minus 2 000 sat = 118 000 sat.
    assert ticket["net_native"] == {"amount": "0.00118", "asset": "BTC"}
    assert ticket["destination"] == api.SENDER["btc"]
    api.credit("a", "30.00", "test funds")
    withdrawal = api.problem(api.withdraw("a", "30.00", "USDT-TRC20"), 409, "withdrawal_refused")
    assert api.refused(withdrawal["decision"]) == ["withdrawals_enabled", "withdrawal_asset"]


def test_the_payment_must_not_be_older_than_14_days(api: PolicyApi, world: World) -> None:
    """ "The payment you'd want a refund from must not be older than 14 days. (The minimum time
    required by law for purchases made online)"."""
    api.account("w")
    topup = api.top_up("w", "0.001")
    world.advance(timedelta(days=14))

    on_day_14 = api.refund_quote("w", topup["id"])
    world.advance(timedelta(seconds=1))
    older = api.refund_quote("w", topup["id"])

    assert on_day_14["allowed"] is True
    assert api.refused(older) == ["refund_window"]
    assert api.rule(older, "refund_window")["clause"].startswith("The payment you'd want")
    assert older["overridable"] is False


def test_the_funds_must_not_already_have_been_spent(api: PolicyApi) -> None:
    """ "The funds must not already have been spent. (Exceptions can be made if you where unable
    to use the service due to our, or any involved providers fault)" — the exception is an
    operator's, so the refusal says it can be overridden."""
    api.account("s")
    topup = api.top_up("s", "0.001")  # $60.00
    api.use("s", "30.00", "30.00")

    refused = api.problem(api.refund("s", topup["id"]), 409, "refund_refused")

    decision = refused["decision"]
    assert "refundable_amount" in api.refused(decision)
    assert "Nothing is left to refund." in api.rule(decision, "refundable_amount")["reason"]
    assert decision["overridable"] is True


def test_any_amount_less_than_1_dollar_is_not_refunded(world: World) -> None:
    """ "Any amount less than $1 will not be refunded, unless the payment processor agrees to
    refund the transaction fees" (an operator's exception). A 100 sat fee estimate keeps the
    network fee out of the way."""
    api = world.app("ticketed-hosting", fees={"BTC": "0.000001"})
    api.account("m")
    topup = api.top_up("m", "0.001")  # $60.00
    api.use("m", "59.01")
    world.prices(btc="50000")

    below = api.refund_quote("m", topup["id"])
    assert api.refused(below) == ["minimum_amount"]
    assert "$0.99 is below the $1.00 minimum" in api.rule(below, "minimum_amount")["reason"]
    assert below["overridable"] is True

    api.credit("m", "0.01", "courtesy cent")
    at = api.refund_quote("m", topup["id"])
    assert at["allowed"] is True
    # $1 / $50 000 = 2 000 sat; minus 100 sat = 1 900 sat.
    assert api.money(at)["net_native"] == "0.000019 BTC"


def test_no_refund_while_another_refund_request_is_pending(api: PolicyApi) -> None:
    """ "There must be no pending refund requests or active charge backs with the payment
    processor in progress" — disputes are not modelled, so that half always passes."""
    api.account("p")
    first = api.top_up("p", "0.001")  # $60.00
    second = api.top_up("p", "0.001")  # $60.00
    ticket = api.ok(api.refund("p", first["id"]), 201)

    blocked = api.problem(api.refund("p", second["id"]), 409, "refund_refused")

    decision = blocked["decision"]
    assert api.refused(decision) == ["no_pending_refund"]
    pending = api.rule(decision, "no_pending_refund")
    assert "1 other refund of this account is still pending" in pending["reason"]
    assert pending["clause"].startswith("There must be no pending refund requests")
    assert api.rule(decision, "no_open_dispute")["passed"] is True
    assert decision["overridable"] is False

    api.ok(api.post(f"/v1/refunds/{ticket['id']}/cancel", {"reason": "sent by mistake"}))
    assert api.refund_quote("p", second["id"])["allowed"] is True


def test_the_account_state_is_not_a_condition(api: PolicyApi) -> None:
    """ "approved if and only if all conditions (see below) are properly met" — a suspended
    account meeting every listed condition is refunded."""
    api.account("v")
    topup = api.top_up("v", "0.001")
    api.set_state("v", "suspended", "violation", "abuse report")

    decision = api.refund_quote("v", topup["id"])

    assert decision["allowed"] is True
    assert api.rule(decision, "account_state")["clause"].startswith("Approved if and only if")


def test_after_a_chargeback_below_zero_nothing_is_refunded(api: PolicyApi, world: World) -> None:
    """What happens in the event of a chargeback: "A chargeback will reset your account balance
    to any amount it was before the payment was sent back ... if the amount goes below $0 ..."
    The crypto chargeback is a reorg after credit (docs/domain.md §4): a $60 top-up leaves the
    chain after $100 of the $120 was spent, so the balance reads −$40 and the account is frozen."""
    api.account("r")
    kept = api.top_up("r", "0.001")  # $60.00, block 1
    charged_back = api.top_up("r", "0.001")  # $60.00, block 2
    api.use("r", "100.00")
    world.reorg(Chain.BTC, 1)  # block 2 leaves the chain: its $60 is reversed

    balance = api.ok(api.get("/v1/accounts/r/balance"))
    assert (balance["available"]["amount"], balance["frozen"]) == ("-40.00", True)
    assert api.ok(api.get("/v1/admin/accounts/r/state"))["effective_state"] == "frozen"
    decision = api.refund_quote("r", kept["id"])

    assert set(api.refused(decision)) == {
        "account_state",
        "refundable_amount",
        "minimum_amount",
        "net_positive",
    }
    assert "frozen (negative balance)" in api.rule(decision, "account_state")["reason"]
    gone = api.post("/v1/refunds/quote", {"external_id": "r", "deposit_id": charged_back["id"]})
    api.problem(gone, 409, "topup_not_credited")  # the reversed payment itself is no top-up
    spend = api.post(
        "/v1/accounts/r/usage",
        {"events": [{"event_id": "late", "amount": api.usd("1.00"), "description": "call"}]},
    )
    api.problem(spend, 409, "account_frozen")
