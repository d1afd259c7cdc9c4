"""The operators' review API (/v1/admin/payouts): the queue with its reasons, one request in
full, approve and reject with the calling key as actor, dual approval, the daily limits over
HTTP, and access (admin scope only; unknown ids 404).

The payout worker is not part of these tests: where a request must be "paid" or have a
transaction, the test writes the row the worker would have written (`_settle`, `_signed_tx`).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from kassa.api import create_app
from kassa.config import Settings
from kassa.payouts.tables import payout_request, payout_tx, payout_tx_line
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    from tests.api.conftest import Api

PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"
OTHER_PAYEE = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"


def _prices(api: Api) -> None:
    PricingService(
        api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal("50000")})
    ).refresh([Symbol.BTC])


def _withdraw(
    api: Api, external_id: str, amount: str, address: str = PAYEE, *, key: str = ""
) -> dict[str, Any]:
    """A withdrawal one second after the previous step (lists order by creation time)."""
    api.clock.advance(timedelta(seconds=1))
    made = api.post(
        "/v1/withdrawals",
        {"external_id": external_id, "asset": "BTC", "address": address, "amount": api.usd(amount)},
        key=key,
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def _settle(api: Api, request_id: str, status: str) -> None:
    """Stand in for the payout worker: the request is now `status`."""
    with api.db.transaction() as conn:
        conn.execute(
            update(payout_request)
            .where(payout_request.c.id == uuid.UUID(request_id))
            .values(status=status)
        )


def _app(api: Api, review: dict[str, Any]) -> Api:
    """The same database and clock under other [payouts.review] settings."""
    settings = Settings.model_validate({"payouts": {"review": review}})
    client = TestClient(create_app(settings, database=api.db, clock=api.clock))
    return type(api)(client, api.db, api.clock)


def test_the_review_queue_explains_each_request_and_pages(api: Api) -> None:
    api.account("a", funds="3000")
    api.account("b", funds="100")
    _prices(api)
    paid = _withdraw(api, "b", "30")
    assert paid["status"] == "pending_review"
    _settle(api, paid["id"], "confirmed")  # PAYEE is now a known destination
    known = _withdraw(api, "a", "30")
    large = _withdraw(api, "a", "1500")  # above the $1 000 threshold
    new = _withdraw(api, "a", "30", OTHER_PAYEE)
    fresh = _withdraw(api, "b", "25", OTHER_PAYEE)
    assert known["status"] == "approved"
    api.clock.advance(timedelta(seconds=90))

    first = api.get("/v1/admin/payouts", params={"status": "pending_review", "limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [item["id"] for item in page["requests"]] == [fresh["id"], new["id"]]  # newest first
    second = api.get(
        "/v1/admin/payouts",
        params={"status": "pending_review", "limit": 2, "cursor": page["next_cursor"]},
    ).json()
    assert [item["id"] for item in second["requests"]] == [large["id"]]
    assert second["next_cursor"] is None

    [item] = second["requests"]
    assert item["review_reasons"] == [
        {"code": "above_threshold", "detail": "$1500.00 is above the $1000.00 review threshold"}
    ]
    assert (item["approvals"], item["approvals_required"]) == ([], 1)
    # Made two requests (a second each) before the 90 s wait.
    assert (item["external_id"], item["destination"], item["age_seconds"]) == ("a", PAYEE, 92)
    assert item["gross"] == {"amount": "1500.00", "asset": "USD"}
    assert item["net_native"]["asset"] == "BTC"
    assert page["requests"][1]["review_reasons"] == [
        {"code": "new_destination", "detail": f"nothing was ever paid to {OTHER_PAYEE} on Bitcoin"}
    ]

    oldest = api.get(
        "/v1/admin/payouts", params={"status": "pending_review", "order": "oldest"}
    ).json()
    assert [i["id"] for i in oldest["requests"]] == [large["id"], new["id"], fresh["id"]]
    of_b = api.get("/v1/admin/payouts", params={"external_id": "b"}).json()
    assert [(i["id"], i["status"]) for i in of_b["requests"]] == [
        (fresh["id"], "pending_review"),
        (paid["id"], "confirmed"),
    ]


def test_approve_and_reject_record_the_key_and_reject_returns_the_funds(api: Api) -> None:
    api.account("a", funds="100")
    _prices(api)
    one = _withdraw(api, "a", "30")
    two = _withdraw(api, "a", "40", OTHER_PAYEE)
    assert api.available("a") == "30.00"

    approved = api.post(f"/v1/admin/payouts/{one['id']}/approve", {"note": "known client"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved"
    [approval] = body["approvals"]
    assert (approval["actor"], approval["note"]) == ("api-key:test-admin", "known client")
    assert body["history"][-1]["reason"] == "approved by api-key:test-admin: known client"
    again = api.post(f"/v1/admin/payouts/{one['id']}/approve", {})
    api.problem(again, 409, "payout_request_not_pending")

    api.problem(api.post(f"/v1/admin/payouts/{two['id']}/reject", {}), 422, "validation_error")
    rejected = api.post(f"/v1/admin/payouts/{two['id']}/reject", {"reason": "sanctioned"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["history"][-1]["reason"] == "sanctioned"
    assert api.available("a") == "70.00"  # the $40 came back in full
    # The customer sees the same outcome on its own endpoint.
    assert api.get(f"/v1/withdrawals/{two['id']}").json()["status"] == "rejected"

    # Approved but not yet signed: still rejectable; signed: no longer.
    late = api.post(f"/v1/admin/payouts/{one['id']}/reject", {"reason": "customer called"})
    assert late.json()["status"] == "rejected"
    assert api.available("a") == "100.00"
    three = _withdraw(api, "a", "30")
    _settle(api, three["id"], "signed")
    refused = api.post(f"/v1/admin/payouts/{three['id']}/reject", {"reason": "too late"})
    api.problem(refused, 409, "payout_request_not_pending")
    assert api.available("a") == "70.00"


def test_two_different_admin_keys_approve_above_the_dual_threshold(api: Api) -> None:
    dual = _app(api, {"threshold_usd": "40.00", "dual_approval_usd": "50.00"})
    with dual.client:
        dual.account("a", funds="100")
        _prices(dual)
        made = _withdraw(dual, "a", "60")
        assert made["status"] == "pending_review"
        other_admin = dual.key(["admin"], name="second-operator")

        first = dual.post(f"/v1/admin/payouts/{made['id']}/approve", {})
        assert first.status_code == 200, first.text
        assert (first.json()["status"], first.json()["approvals_required"]) == (
            "pending_review",
            2,
        )
        twice = dual.post(f"/v1/admin/payouts/{made['id']}/approve", {})
        body = dual.problem(twice, 409, "payout_already_approved")
        assert "api-key:test-admin already approved" in body["detail"]
        second = dual.post(f"/v1/admin/payouts/{made['id']}/approve", {}, token=other_admin)

        assert second.json()["status"] == "approved"
        assert [a["actor"] for a in second.json()["approvals"]] == [
            "api-key:test-admin",
            "api-key:second-operator",
        ]


def test_one_request_in_full_with_its_transactions(api: Api) -> None:
    api.account("a", funds="100")
    _prices(api)
    made = _withdraw(api, "a", "30")
    api.post(f"/v1/admin/payouts/{made['id']}/approve", {})
    assert api.get(f"/v1/admin/payouts/{made['id']}").json()["transactions"] == []
    tx_id = uuid.uuid4()
    with api.db.transaction() as conn:  # what the worker stores when it signs
        conn.execute(
            insert(payout_tx).values(
                id=tx_id,
                chain="btc",
                asset="BTC",
                txid="ab" * 32,
                spend_key="btc:test",
                raw="00",
                spend="{}",
                fee_native=1_410,
                fee_asset="BTC",
                fee_estimate="{}",
                status="broadcast",
                created_at=api.clock.now(),
                updated_at=api.clock.now(),
            )
        )
        conn.execute(
            insert(payout_tx_line).values(
                tx_id=tx_id,
                request_id=uuid.UUID(made["id"]),
                destination=PAYEE,
                amount_native=48_000,
                fee_share_native=1_410,
            )
        )
    _settle(api, made["id"], "broadcast")

    shown = api.get(f"/v1/admin/payouts/{made['id']}")

    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["status"] == "broadcast"
    assert body["review_reasons"][0]["code"] == "new_destination"
    assert (body["fee_charge"], body["fees"]) == ("all", {"amount": "5.00", "asset": "USD"})
    assert [e["to"] for e in body["history"]] == ["pending_review", "approved"]
    [tx] = body["transactions"]
    assert (tx["txid"], tx["status"], tx["chain"]) == ("ab" * 32, "broadcast", "btc")
    assert tx["amount"] == {"amount": "0.00048", "asset": "BTC"}
    assert tx["fee"] == {"amount": "0.0000141", "asset": "BTC"}
    assert tx["fee_paid"] is None


def test_daily_limit_over_http_is_a_stored_409_and_changes_nothing(api: Api) -> None:
    limited = _app(api, {"max_count_per_day": 1})
    with limited.client:
        limited.account("a", funds="100")
        _prices(limited)
        _withdraw(limited, "a", "30")
        body: dict[str, Any] = {
            "external_id": "a",
            "asset": "BTC",
            "address": PAYEE,
            "amount": limited.usd("30"),
        }
        refused = limited.post("/v1/withdrawals", body, key="second")
        problem = limited.problem(refused, 409, "payout_limit_exceeded")
        assert (problem["limits"]["requests"], problem["limits"]["max_requests"]) == (1, 1)
        assert limited.available("a") == "70.00"
        again = limited.post("/v1/withdrawals", body, key="second")
        assert limited.problem(again, 409, "payout_limit_exceeded") == problem
        listed = limited.get("/v1/admin/payouts", params={"external_id": "a"}).json()
        assert len(listed["requests"]) == 1


def test_only_admin_keys_and_only_existing_requests(api: Api) -> None:
    api.account("a", funds="100")
    _prices(api)
    made = _withdraw(api, "a", "30")
    base = f"/v1/admin/payouts/{made['id']}"
    for token in (
        api.key(["accounts:read", "accounts:write"]),
        api.key(["accounts:read", "accounts:write"], account="a"),
    ):
        api.problem(api.get("/v1/admin/payouts", token), 403, "forbidden")
        api.problem(api.get(base, token), 403, "forbidden")
        api.problem(api.post(f"{base}/approve", {}, token=token), 403, "forbidden")
        api.problem(api.post(f"{base}/reject", {"reason": "x"}, token=token), 403, "forbidden")
    anonymous = api.client.post(f"{base}/approve", json={}, headers={"Idempotency-Key": "k"})
    api.problem(anonymous, 401, "unauthenticated")
    api.problem(api.client.get("/v1/admin/payouts"), 401, "unauthenticated")
    assert api.get(base).json()["status"] == "pending_review"  # nothing changed

    missing = f"/v1/admin/payouts/{uuid.uuid4()}"
    api.problem(api.get(missing), 404, "payout_request_not_found")
    api.problem(api.post(f"{missing}/approve", {}), 404, "payout_request_not_found")
    api.problem(api.post(f"{missing}/reject", {"reason": "x"}), 404, "payout_request_not_found")
    api.problem(
        api.get("/v1/admin/payouts", params={"cursor": "bm90LWEtY3Vyc29y"}), 422, "invalid_cursor"
    )
    api.problem(api.get("/v1/admin/payouts", params={"status": "paid"}), 422, "validation_error")
    api.problem(
        api.get("/v1/admin/payouts", params={"external_id": "nobody"}), 404, "account_not_found"
    )
