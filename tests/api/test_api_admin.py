"""Operator adjustments: admin scope only, recorded with the key as actor and a reason."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from kassa.ledger.transfers import get_transaction

if TYPE_CHECKING:
    from tests.api.conftest import Api


def test_credit_and_debit_adjustments(api: Api) -> None:
    api.account("u1")
    credit = api.post(
        "/v1/admin/adjustments",
        {"external_id": "u1", "direction": "credit", "amount": api.usd("20"), "reason": "outage"},
    )
    assert credit.status_code == 201
    assert credit.json()["external_id"] == "u1"
    assert credit.json()["balance"]["available"]["amount"] == "20.00"
    debit = api.adjust("u1", "debit", "5.5")
    assert debit.json()["balance"]["posted"]["amount"] == "14.50"
    with api.db.transaction() as conn:
        transaction = get_transaction(conn, uuid.UUID(credit.json()["transaction_id"]))
    assert transaction.actor == "api-key:test-admin"
    assert transaction.reason == "outage"


def test_adjustment_requires_admin(api: Api) -> None:
    api.account("u1")
    writer = api.key(["accounts:read", "accounts:write"])
    body = {"external_id": "u1", "direction": "credit", "amount": api.usd("1"), "reason": "x"}
    api.problem(api.post("/v1/admin/adjustments", body, token=writer), 403, "forbidden")
    assert api.available("u1") == "0.00"


def test_debit_beyond_balance_is_409(api: Api) -> None:
    api.account("u1", funds="1")
    body = {"external_id": "u1", "direction": "debit", "amount": api.usd("1.01"), "reason": "x"}
    api.problem(api.post("/v1/admin/adjustments", body), 409, "insufficient_funds")
    assert api.available("u1") == "1.00"


def test_adjustment_of_unknown_account_is_404(api: Api) -> None:
    body = {"external_id": "ghost", "direction": "credit", "amount": api.usd("1"), "reason": "x"}
    api.problem(api.post("/v1/admin/adjustments", body), 404, "account_not_found")


def test_adjustment_needs_a_reason_and_a_direction(api: Api) -> None:
    api.account("u1")
    for body in (
        {"external_id": "u1", "direction": "credit", "amount": api.usd("1"), "reason": ""},
        {"external_id": "u1", "direction": "gift", "amount": api.usd("1"), "reason": "x"},
    ):
        api.problem(api.post("/v1/admin/adjustments", body), 422, "validation_error")
    assert api.available("u1") == "0.00"


def test_adjustment_replay_returns_the_same_transaction(api: Api) -> None:
    api.account("u1")
    body = {"external_id": "u1", "direction": "credit", "amount": api.usd("3"), "reason": "x"}
    first = api.post("/v1/admin/adjustments", body, key="adj-1")
    again = api.post("/v1/admin/adjustments", body, key="adj-1")
    assert again.status_code == 201
    assert again.json()["transaction_id"] == first.json()["transaction_id"]
    assert api.available("u1") == "3.00"
