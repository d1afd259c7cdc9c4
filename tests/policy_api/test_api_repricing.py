"""Re-pricing at approval over the HTTP API (issue 14): policy A's refunds are priced "at the rate
on the refund date", so a codexkey refund that waited in review is priced again when the
operator approves it — shown beforehand, recorded as a ``repriced`` history entry with the old
and the new figures. The default policy's committed figures stand; a re-pricing the policy
would refuse refuses the approval and changes nothing.

Fees: conftest.FEES (BTC 2 000 sat). The clock starts on Friday 20 November 2026, 14:03:11 UTC.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from kassa.events.tables import event

if TYPE_CHECKING:
    from tests.policy_api.conftest import PolicyApi, World


def _btc(amount: str) -> dict[str, str]:
    return {"amount": amount, "asset": "BTC"}


def _usd(amount: str) -> dict[str, str]:
    return {"amount": amount, "asset": "USD"}


def _figures(side: dict[str, Any]) -> tuple[Any, ...]:
    return (side["rate"], side["network_fee_native"], side["net"], side["net_native"])


def test_a_codexkey_refund_is_shown_repriced_then_repriced_at_approval(
    world: World,
) -> None:
    api = world.app("codexkey")
    api.account("a")
    topup = api.top_up("a", "0.001")  # $60.00 at $60 000
    refund = api.ok(api.refund("a", topup["id"]), 201)
    # $60 / $60 000 = 100 000 sat − 2 000 = 98 000 sat, worth $58.80.
    assert refund["status"] == "pending_review"
    assert (refund["net_native"], refund["net"]) == (_btc("0.00098"), _usd("58.80"))
    committed = ("60000", _btc("0.00002"), _usd("58.80"), _btc("0.00098"))

    # Three days in review; BTC falls to $50 000: $60 buys 120 000 sat − 2 000 = 118 000 sat,
    # worth $59.00 (the fee charged, 2 000 sat, is now $1.00).
    world.advance(timedelta(days=3))
    world.prices(btc="50000")
    shown = api.ok(api.get(f"/v1/admin/payouts/{refund['id']}"))
    preview = shown["repricing_preview"]
    assert (preview["allowed"], preview["changed"], preview["actor"]) == (True, True, None)
    assert preview["gross"] == _usd("60.00")
    assert _figures(preview["committed"]) == committed
    assert _figures(preview["repriced"]) == (
        "50000",
        _btc("0.00002"),
        _usd("59.00"),
        _btc("0.00118"),
    )
    assert preview["repriced"]["rate_lock_id"] is None  # a preview locks nothing
    assert shown["net_native"] == _btc("0.00098")  # nothing changed yet
    queue = api.ok(api.get("/v1/admin/payouts?status=pending_review"))["requests"]
    [listed] = [item for item in queue if item["id"] == refund["id"]]
    assert listed["repricing_preview"]["repriced"]["net_native"] == _btc("0.00118")

    approved = api.ok(api.post(f"/v1/admin/payouts/{refund['id']}/approve", {"note": "ok"}))

    assert approved["status"] == "approved"
    assert (approved["net_native"], approved["net"]) == (_btc("0.00118"), _usd("59.00"))
    assert approved["network_fee"] == _usd("1.00")
    assert approved["gross"] == _usd("60.00")
    assert approved["rate_lock_id"] != refund["rate_lock_id"]
    assert approved["quote_id"] == refund["quote_id"]  # the quote it committed, then
    repricing = approved["repricing"]
    assert repricing["actor"] == "api-key:test-admin"
    assert repricing["at"] == "2026-11-23T14:03:11Z"
    assert _figures(repricing["committed"]) == committed
    assert _figures(repricing["repriced"]) == _figures(preview["repriced"])
    assert repricing["repriced"]["rate_lock_id"] == approved["rate_lock_id"]
    assert approved["repricing_preview"] is None
    # The stored decision agrees with the request; its net_positive rule says why it changed.
    breakdown = approved["decision"]["breakdown"]
    assert (breakdown["net_native"], breakdown["rate"]) == (_btc("0.00118"), "50000")
    net_rule = api.rule(approved["decision"], "net_positive")["reason"]
    assert net_rule.startswith("Re-priced at approval, 2026-11-23 14:03 UTC, at $50000 per BTC")
    # The history: created, repriced (status unchanged), approved — in that order.
    history = api.ok(api.get(f"/v1/admin/payouts/{refund['id']}"))["history"]
    steps = [(e["kind"], e["from"], e["to"]) for e in history]
    assert steps == [
        ("status", None, "pending_review"),
        ("repriced", "pending_review", "pending_review"),
        ("status", "pending_review", "approved"),
    ]
    entry = history[1]
    assert entry["repricing"] == repricing
    assert "rate $60000 → $50000 per BTC" in entry["reason"]
    assert "nothing moves in the ledger now" in entry["reason"]
    # The hold is the gross, which re-pricing keeps: the balance did not move.
    assert api.available("a") == "0.00"
    # The customer's view of the request has the same history entry.
    mine = api.ok(api.get(f"/v1/refunds/{refund['id']}"))
    assert mine["history"][1]["repricing"]["repriced"]["net_native"] == _btc("0.00118")
    # The host service hears of it: refund.repriced, between requested and approved, carrying
    # the request with its re-priced figures.
    with world.db.engine.connect() as conn:
        rows = conn.execute(
            select(event.c.type, event.c.data)
            .where(event.c.subject_id == refund["id"])
            .order_by(event.c.seq)
        ).all()
    assert [r.type for r in rows] == ["refund.requested", "refund.repriced", "refund.approved"]
    assert json.loads(rows[1].data)["net_native"] == _btc("0.00118")


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_the_default_policy_keeps_the_committed_figures(world: World) -> None:
    """The default policy's refunds (here reviewed, by an override) keep what was committed."""
    api = world.app("default", overrides={"refund": {"review_required": True}})
    api.account("d")
    topup = api.top_up("d", "0.001")
    refund = api.ok(api.refund("d", topup["id"]), 201)
    world.prices(btc="50000")

    assert api.ok(api.get(f"/v1/admin/payouts/{refund['id']}"))["repricing_preview"] is None
    approved = api.ok(api.post(f"/v1/admin/payouts/{refund['id']}/approve", {}))

    assert approved["status"] == "approved"
    assert (approved["net_native"], approved["rate_lock_id"]) == (
        _btc("0.00098"),
        refund["rate_lock_id"],
    )
    assert approved["repricing"] is None
    assert [e["kind"] for e in approved["history"]] == ["status", "status"]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_a_repricing_the_policy_refuses_refuses_the_approval_and_changes_nothing(
    world: World,
) -> None:
    """$1.80 at $60 000 = 3 000 sat − 2 000 = 1 000 sat. BTC triples to $180 000: $1.80 buys
    1 000 sat, less than the 2 000 sat fee — nothing would be paid (1 000 sat short)."""
    api: PolicyApi = world.app("codexkey")
    api.account("r")
    topup = api.top_up("r", "0.00003")
    refund = api.ok(api.refund("r", topup["id"]), 201)
    assert refund["net_native"] == _btc("0.00001")
    world.prices(btc="180000")

    preview = api.ok(api.get(f"/v1/admin/payouts/{refund['id']}"))["repricing_preview"]
    assert (preview["allowed"], preview["repriced"]["net_native"]) == (False, _btc("-0.00001"))
    assert "Nothing would be paid out" in preview["refusal"]
    problem = api.problem(
        api.post(f"/v1/admin/payouts/{refund['id']}/approve", {}), 409, "payout_repricing_refused"
    )
    assert "Nothing changed; reject the request" in problem["detail"]
    assert problem["repricing"]["allowed"] is False

    after = api.ok(api.get(f"/v1/admin/payouts/{refund['id']}"))
    assert (after["status"], after["approvals"], after["net_native"]) == (
        "pending_review",
        [],
        _btc("0.00001"),
    )
    assert after["rate_lock_id"] == refund["rate_lock_id"]
    assert [e["kind"] for e in after["history"]] == ["status"]
    # The market comes back: the same request is approved, re-priced.
    world.prices(btc="60000")
    approved = api.ok(api.post(f"/v1/admin/payouts/{refund['id']}/approve", {}))
    assert (approved["status"], approved["net_native"]) == ("approved", _btc("0.00001"))
    assert approved["repricing"]["changed"] is False
