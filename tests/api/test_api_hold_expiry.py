"""A hold past its expiry reads `expired` and frees its funds at once, sweeper or not (issue 13,
item 9). No worker runs here: only the manual clock moves."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.api.conftest import Api


def expiring_hold(api: Api, external_id: str, amount: str, seconds: int = 60) -> str:
    made = api.post(
        f"/v1/accounts/{external_id}/holds",
        {"amount": api.usd(amount), "expires_in_seconds": seconds},
    )
    assert made.status_code == 201, made.text
    hold_id: str = made.json()["id"]
    return hold_id


def test_an_expired_hold_reads_expired_and_its_funds_are_available(api: Api) -> None:
    api.account("acme-1", funds="50")
    hold_id = expiring_hold(api, "acme-1", "40")
    assert api.available("acme-1") == "10.00"

    api.clock.advance(timedelta(seconds=60))
    assert api.get(f"/v1/holds/{hold_id}").json()["status"] == "expired"
    assert api.available("acme-1") == "50.00"
    account = api.get("/v1/accounts/acme-1").json()
    assert account["balance"]["available"]["amount"] == "50.00"


def test_the_balance_is_right_before_the_hold_is_read(api: Api) -> None:
    api.account("acme-2", funds="50")
    hold_id = expiring_hold(api, "acme-2", "40")
    api.clock.advance(timedelta(seconds=61))
    assert api.available("acme-2") == "50.00"
    assert api.get(f"/v1/holds/{hold_id}").json()["status"] == "expired"


def test_spending_may_use_an_expired_holds_funds(api: Api) -> None:
    api.account("acme-3", funds="50")
    expiring_hold(api, "acme-3", "40")
    api.clock.advance(timedelta(minutes=5))
    # A new hold, a usage batch and an activation each need the expired hold's funds.
    assert (
        api.post(
            "/v1/accounts/acme-3/holds", {"amount": api.usd("30"), "expires_in_seconds": 600}
        ).status_code
        == 201
    )
    usage = api.post(
        "/v1/accounts/acme-3/usage",
        {"events": [{"event_id": "e1", "amount": api.usd("15"), "description": "call"}]},
    )
    assert usage.status_code == 200, usage.text
    activation = api.post("/v1/accounts/acme-3/activations", {"price": api.usd("5")})
    assert activation.status_code == 201, activation.text
    assert api.available("acme-3") == "0.00"


def test_an_expired_hold_cannot_be_voided_or_captured(api: Api) -> None:
    api.account("acme-4", funds="50")
    hold_id = expiring_hold(api, "acme-4", "40")
    api.clock.advance(timedelta(seconds=60))
    api.problem(api.post(f"/v1/holds/{hold_id}/void"), 409, "hold_expired")
    api.problem(api.post(f"/v1/holds/{hold_id}/capture"), 409, "hold_expired")
    assert api.available("acme-4") == "50.00"
    released = [e for e in api.ledger("acme-4") if e["kind"] != "adjustment"]
    assert released == []  # a release moves pending sums only: no posting


def test_a_hold_not_yet_due_stays_pending(api: Api) -> None:
    api.account("acme-5", funds="50")
    hold_id = expiring_hold(api, "acme-5", "40")
    api.clock.advance(timedelta(seconds=59))
    assert api.get(f"/v1/holds/{hold_id}").json()["status"] == "pending"
    assert api.available("acme-5") == "10.00"
    api.problem(
        api.post("/v1/accounts/acme-5/holds", {"amount": api.usd("11"), "expires_in_seconds": 60}),
        409,
        "insufficient_funds",
    )
