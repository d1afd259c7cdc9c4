"""Amounts are exact decimal strings with their asset; anything else is refused with a stable
code before any money moves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.api.conftest import Api

BAD_AMOUNTS: list[tuple[Any, str]] = [
    ("1.0000001", "invalid_amount"),  # USD has six decimal places
    ("-5", "invalid_amount"),
    ("0", "invalid_amount"),
    ("1e3", "invalid_amount"),
    ("12,50", "invalid_amount"),
    (" 1", "invalid_amount"),
    ("", "invalid_amount"),
    (12.5, "invalid_amount"),  # a JSON number, already a binary float
    (12, "invalid_amount"),
    (True, "invalid_amount"),
    (None, "invalid_amount"),
    ("9" * 90, "amount_out_of_range"),
    ("9" * 101, "invalid_amount"),  # too long to even read
]


@pytest.mark.parametrize(("amount", "code"), BAD_AMOUNTS)
def test_bad_hold_amount_is_422_and_changes_nothing(api: Api, amount: Any, code: str) -> None:
    api.account("u1", funds="10")
    before = (api.balance("u1"), api.ledger("u1"))
    response = api.post("/v1/accounts/u1/holds", {"amount": api.usd(amount)})
    api.problem(response, 422, code)
    assert (api.balance("u1"), api.ledger("u1")) == before


@pytest.mark.parametrize(("amount", "code"), BAD_AMOUNTS[:4] + BAD_AMOUNTS[7:9])
def test_bad_adjustment_amount_is_422_and_changes_nothing(api: Api, amount: Any, code: str) -> None:
    api.account("u1", funds="10")
    before = (api.balance("u1"), api.ledger("u1"))
    body = {"external_id": "u1", "direction": "credit", "amount": api.usd(amount), "reason": "x"}
    api.problem(api.post("/v1/admin/adjustments", body), 422, code)
    assert (api.balance("u1"), api.ledger("u1")) == before


def test_json_number_refusal_says_why(api: Api) -> None:
    api.account("u1", funds="10")
    body = api.problem(
        api.post("/v1/accounts/u1/holds", {"amount": api.usd(1.1)}), 422, "invalid_amount"
    )
    assert "decimal strings" in body["detail"]
    assert body["errors"][0]["loc"] == ["body", "amount", "amount"]


def test_wrong_or_unknown_asset_is_422(api: Api) -> None:
    api.account("u1", funds="10")
    btc = {"amount": {"amount": "1", "asset": "BTC"}}
    api.problem(api.post("/v1/accounts/u1/holds", btc), 422, "asset_mismatch")
    xyz = {"amount": {"amount": "1", "asset": "XYZ"}}
    api.problem(api.post("/v1/accounts/u1/holds", xyz), 422, "unknown_asset")
    assert api.available("u1") == "10.00"


def test_bare_string_amount_is_a_validation_error(api: Api) -> None:
    api.account("u1", funds="10")
    response = api.post("/v1/accounts/u1/holds", {"amount": "1.00"})
    api.problem(response, 422, "validation_error")


def test_smallest_unit_is_accepted_exactly(api: Api) -> None:
    api.account("u1", funds="1")
    response = api.post("/v1/accounts/u1/holds", {"amount": api.usd("0.000001")})
    assert response.status_code == 201
    assert response.json()["amount"] == {"amount": "0.000001", "asset": "USD"}
    assert api.available("u1") == "0.999999"
