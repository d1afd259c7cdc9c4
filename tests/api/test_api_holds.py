"""Holds over HTTP: reserve, capture (in part), void, expiry, and refusals that change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.api.conftest import Api


def hold(api: Api, external_id: str, amount: str, **extra: Any) -> dict[str, Any]:
    response = api.post(f"/v1/accounts/{external_id}/holds", {"amount": api.usd(amount), **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_hold_reserves_funds_until_captured(api: Api) -> None:
    api.account("u1", funds="10")
    created = hold(api, "u1", "4.00", memo="order 17", expires_in_seconds=600)
    assert created["status"] == "pending"
    assert created["amount"] == {"amount": "4.00", "asset": "USD"}
    assert created["captured_amount"] is None
    assert created["memo"] == "order 17"
    assert created["resolved_at"] is None
    expected_expiry = api.clock.now() + timedelta(seconds=600)
    assert created["expires_at"] == expected_expiry.isoformat().replace("+00:00", "Z")
    balance = api.balance("u1")
    assert balance["posted"]["amount"] == "10.00"
    assert balance["pending"]["amount"] == "4.00"
    assert balance["available"]["amount"] == "6.00"
    assert api.get(f"/v1/holds/{created['id']}").json() == created


def test_partial_capture_posts_the_part_and_releases_the_rest(api: Api) -> None:
    api.account("u1", funds="10")
    created = hold(api, "u1", "4")
    response = api.post(f"/v1/holds/{created['id']}/capture", {"amount": api.usd("1.50")})
    assert response.status_code == 200, response.text
    captured = response.json()
    assert captured["status"] == "captured"
    assert captured["captured_amount"] == {"amount": "1.50", "asset": "USD"}
    assert captured["resolved_at"] is not None
    balance = api.balance("u1")
    assert balance["posted"]["amount"] == "8.50"
    assert balance["pending"]["amount"] == "0.00"
    assert balance["available"]["amount"] == "8.50"
    assert api.ledger("u1")[0]["amount"]["amount"] == "-1.50"


def test_capture_without_body_takes_everything(api: Api) -> None:
    api.account("u1", funds="10")
    created = hold(api, "u1", "4")
    captured = api.post(f"/v1/holds/{created['id']}/capture").json()
    assert captured["captured_amount"]["amount"] == "4.00"
    assert api.available("u1") == "6.00"


def test_void_returns_the_funds(api: Api) -> None:
    api.account("u1", funds="10")
    created = hold(api, "u1", "4")
    voided = api.post(f"/v1/holds/{created['id']}/void")
    assert voided.status_code == 200
    assert voided.json()["status"] == "voided"
    assert api.balance("u1")["available"]["amount"] == "10.00"
    assert api.balance("u1")["pending"]["amount"] == "0.00"


def test_second_capture_is_refused(api: Api) -> None:
    api.account("u1", funds="10")
    created = hold(api, "u1", "4")
    assert api.post(f"/v1/holds/{created['id']}/capture").status_code == 200
    again = api.post(f"/v1/holds/{created['id']}/capture")
    api.problem(again, 409, "hold_already_resolved")
    void = api.post(f"/v1/holds/{created['id']}/void")
    api.problem(void, 409, "hold_already_resolved")
    assert api.available("u1") == "6.00"


def test_capture_retry_with_same_key_replays_success(api: Api) -> None:
    api.account("u1", funds="10")
    created = hold(api, "u1", "4")
    first = api.post(f"/v1/holds/{created['id']}/capture", key="cap-1")
    again = api.post(f"/v1/holds/{created['id']}/capture", key="cap-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert api.available("u1") == "6.00"


def test_capture_after_expiry_is_refused_and_returns_the_funds(api: Api) -> None:
    api.account("u1", funds="10")
    created = hold(api, "u1", "4", expires_in_seconds=60)
    api.clock.advance(timedelta(seconds=60))
    response = api.post(f"/v1/holds/{created['id']}/capture")
    api.problem(response, 409, "hold_expired")
    assert api.get(f"/v1/holds/{created['id']}").json()["status"] == "expired"
    assert api.balance("u1")["available"]["amount"] == "10.00"
    assert api.balance("u1")["pending"]["amount"] == "0.00"


def test_capture_more_than_held_is_422_and_changes_nothing(api: Api) -> None:
    api.account("u1", funds="10")
    created = hold(api, "u1", "4")
    response = api.post(f"/v1/holds/{created['id']}/capture", {"amount": api.usd("4.01")})
    api.problem(response, 422, "capture_exceeds_hold")
    assert api.get(f"/v1/holds/{created['id']}").json()["status"] == "pending"
    assert api.available("u1") == "6.00"


def test_insufficient_funds_is_409_with_detail_and_changes_nothing(api: Api) -> None:
    api.account("u1", funds="3")
    before = (api.balance("u1"), api.ledger("u1"))
    response = api.post("/v1/accounts/u1/holds", {"amount": api.usd("3.01")})
    body = api.problem(response, 409, "insufficient_funds")
    assert "3.00 USD available" in body["detail"]
    assert (api.balance("u1"), api.ledger("u1")) == before


def test_refusal_is_replayed_for_the_same_key(api: Api) -> None:
    api.account("u1", funds="1")
    request = {"amount": api.usd("2")}
    first = api.post("/v1/accounts/u1/holds", request, key="h-1")
    api.problem(first, 409, "insufficient_funds")
    api.adjust("u1", "credit", "5")
    # The outcome is stored under the key: a retry gets the same answer, a new key succeeds.
    again = api.post("/v1/accounts/u1/holds", request, key="h-1")
    assert again.json() == first.json()
    assert api.post("/v1/accounts/u1/holds", request, key="h-2").status_code == 201


def test_hold_create_replays_the_same_hold(api: Api) -> None:
    api.account("u1", funds="10")
    request = {"amount": api.usd("2"), "memo": "m"}
    first = api.post("/v1/accounts/u1/holds", request, key="same")
    again = api.post("/v1/accounts/u1/holds", {"amount": api.usd("2.00"), "memo": "m"}, key="same")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert api.available("u1") == "8.00"
    different = api.post("/v1/accounts/u1/holds", {"amount": api.usd("3")}, key="same")
    api.problem(different, 409, "idempotency_key_reused")


def test_unknown_and_malformed_hold_ids_are_404(api: Api) -> None:
    api.problem(api.get("/v1/holds/3f1b1a3e-0000-4000-8000-000000000000"), 404, "hold_not_found")
    api.problem(api.get("/v1/holds/not-a-uuid"), 404, "hold_not_found")
    api.problem(api.post("/v1/holds/not-a-uuid/capture"), 404, "hold_not_found")


def test_expiry_is_bounded_to_seven_days(api: Api) -> None:
    api.account("u1", funds="10")
    for seconds in (0, 7 * 24 * 3600 + 1, "60"):
        response = api.post(
            "/v1/accounts/u1/holds", {"amount": api.usd("1"), "expires_in_seconds": seconds}
        )
        api.problem(response, 422, "validation_error")
    assert api.available("u1") == "10.00"
