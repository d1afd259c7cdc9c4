"""Activations over HTTP: reserve a price for a window, then fulfil (final) or cancel (refunded at
once); an activation left unfulfilled expires and the worker's sweep refunds it."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from kassa.worker import sweep_expired_holds

if TYPE_CHECKING:
    from tests.api.conftest import Api


def iso(api: Api, delta: timedelta = timedelta(0)) -> str:
    return (api.clock.now() + delta).isoformat().replace("+00:00", "Z")


def reserve(api: Api, external_id: str = "u1", price: str = "3.00", **extra: Any) -> dict[str, Any]:
    response = api.post(
        f"/v1/accounts/{external_id}/activations", {"price": api.usd(price), **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def url(activation: dict[str, Any], action: str = "", external_id: str = "u1") -> str:
    path = f"/v1/accounts/{external_id}/activations/{activation['id']}"
    return f"{path}/{action}" if action else path


def test_reserving_holds_the_price_for_twenty_minutes(api: Api) -> None:
    api.account("u1", funds="10")

    created = reserve(api, description="number +44 20 7946 0000")

    assert created["status"] == "pending"
    assert created["refunded"] is False
    assert created["price"] == {"amount": "3.00", "asset": "USD"}
    assert created["window_seconds"] == 1200
    assert created["expires_at"] == iso(api, timedelta(minutes=20))
    assert created["resolved_at"] is None
    assert created["description"] == "number +44 20 7946 0000"
    assert api.balance("u1")["pending"]["amount"] == "3.00"
    assert api.available("u1") == "7.00"
    assert api.get(url(created)).json() == created
    # It is a ledger hold, visible as one.
    hold = api.get(f"/v1/holds/{created['hold_id']}").json()
    assert (hold["status"], hold["expires_at"]) == ("pending", created["expires_at"])


def test_cancel_refunds_at_once(api: Api) -> None:
    api.account("u1", funds="10")
    created = reserve(api)

    response = api.post(url(created, "cancel"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["refunded"], body["resolved_at"]) == ("cancelled", True, iso(api))
    assert api.available("u1") == "10.00"
    api.problem(api.post(url(created, "fulfil")), 409, "activation_cancelled")


def test_fulfil_charges_the_price_and_is_final(api: Api) -> None:
    api.account("u1", funds="10")
    created = reserve(api)

    response = api.post(url(created, "fulfil"))

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "fulfilled"
    assert api.balance("u1")["posted"]["amount"] == "7.00"
    assert api.ledger("u1")[0]["amount"]["amount"] == "-3.00"
    body = api.problem(api.post(url(created, "cancel")), 409, "activation_fulfilled")
    assert "not refundable" in body["detail"]
    assert api.available("u1") == "7.00"


def test_fulfil_after_the_window_is_refused_and_refunded(api: Api) -> None:
    api.account("u1", funds="10")
    created = reserve(api, window_seconds=60)
    api.clock.advance(timedelta(seconds=60))
    assert api.get(url(created)).json()["status"] == "expired"

    body = api.problem(api.post(url(created, "fulfil"), key="late"), 409, "activation_expired")

    assert "returned to the balance" in body["detail"]
    assert api.available("u1") == "10.00"
    after = api.get(url(created)).json()
    assert (after["status"], after["refunded"]) == ("expired", True)
    # A retry under the same key gets the same refusal.
    api.problem(api.post(url(created, "fulfil"), key="late"), 409, "activation_expired")


def test_an_expired_activation_is_refunded_at_once_sweeper_or_not(api: Api) -> None:
    """Its hold expires when the account is next touched (issue 13, item 9); the sweep then
    finds nothing left to expire."""
    api.account("u1", funds="10")
    created = reserve(api, window_seconds=300)
    api.clock.advance(timedelta(seconds=300))
    before_sweep = api.get(url(created)).json()
    assert (before_sweep["status"], before_sweep["refunded"]) == ("expired", True)
    assert api.available("u1") == "10.00"

    assert sweep_expired_holds(api.db, api.clock) == 0

    swept = api.get(url(created)).json()
    assert (swept["status"], swept["refunded"]) == ("expired", True)
    assert api.available("u1") == "10.00"
    api.problem(api.post(url(created, "cancel")), 409, "activation_expired")


def test_retries_with_the_same_key_get_the_same_answer(api: Api) -> None:
    api.account("u1", funds="10")
    response = api.post("/v1/accounts/u1/activations", {"price": api.usd("3")}, key="r1")
    again = api.post("/v1/accounts/u1/activations", {"price": api.usd("3")}, key="r1")
    assert again.status_code == response.status_code == 201
    assert again.json() == response.json()
    assert api.available("u1") == "7.00"

    fulfilled = api.post(url(response.json(), "fulfil"), key="f1")
    assert api.post(url(response.json(), "fulfil"), key="f1").json() == fulfilled.json()
    other = api.post("/v1/accounts/u1/activations", {"price": api.usd("4")}, key="r1")
    api.problem(other, 409, "idempotency_key_reused")


def test_an_activation_the_balance_cannot_cover_is_refused(api: Api) -> None:
    api.account("u1", funds="2")
    response = api.post("/v1/accounts/u1/activations", {"price": api.usd("2.01")})
    api.problem(response, 409, "insufficient_funds")
    assert api.available("u1") == "2.00"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"price": {"amount": "0", "asset": "USD"}}, "invalid_amount"),
        ({"price": {"amount": "1", "asset": "BTC"}}, "asset_mismatch"),
        ({"price": {"amount": "1", "asset": "USD"}, "window_seconds": 0}, "validation_error"),
        ({"price": {"amount": "1", "asset": "USD"}, "window_seconds": 86401}, "validation_error"),
        ({"price": {"amount": "1", "asset": "USD"}, "window_seconds": "60"}, "validation_error"),
    ],
)
def test_unusable_activations_are_refused(api: Api, body: dict[str, Any], code: str) -> None:
    api.account("u1", funds="10")
    api.problem(api.post("/v1/accounts/u1/activations", body), 422, code)
    assert api.available("u1") == "10.00"


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("suspended", "account_suspended"),
        ("terminated", "account_terminated"),
        ("frozen", "account_frozen"),
    ],
)
def test_an_account_that_is_not_active_cannot_reserve(api: Api, state: str, code: str) -> None:
    api.account("u1", funds="10")
    open_one = reserve(api)
    changed = api.post(
        "/v1/admin/accounts/u1/state",
        {"state": state, "reason_code": "violation", "reason": "abuse"},
    )
    assert changed.status_code == 200, changed.text

    api.problem(api.post("/v1/accounts/u1/activations", {"price": api.usd("1")}), 409, code)
    # What was reserved before can still be settled.
    assert api.post(url(open_one, "cancel")).json()["status"] == "cancelled"
    assert api.available("u1") == "10.00"


def test_other_accounts_activations_and_malformed_ids_are_not_found(api: Api) -> None:
    api.account("u1", funds="10")
    api.account("u2", funds="10")
    created = reserve(api)
    bound = api.key(["accounts:write", "accounts:read"], account="u2")

    api.problem(api.get(url(created), token=bound), 404, "account_not_found")
    api.problem(api.get(url(created, external_id="u2")), 404, "activation_not_found")
    api.problem(api.post(url(created, "cancel", "u2"), token=bound), 404, "activation_not_found")
    api.problem(api.get("/v1/accounts/u1/activations/not-a-uuid"), 404, "activation_not_found")
    api.problem(api.post("/v1/accounts/u1/activations/42/fulfil"), 404, "activation_not_found")
    assert api.available("u1") == "7.00"


def test_reading_needs_the_read_scope_and_writing_the_write_scope(api: Api) -> None:
    api.account("u1", funds="10")
    created = reserve(api)
    reader = api.key(["accounts:read"])
    writer = api.key(["accounts:write"])

    assert api.get(url(created), token=reader).status_code == 200
    api.problem(api.post(url(created, "fulfil"), token=reader), 403, "forbidden")
    api.problem(api.get(url(created), token=writer), 403, "forbidden")
    assert api.post(url(created, "fulfil"), token=writer).status_code == 200
