"""Account states over HTTP: an operator (admin key) sets them with a reason code and a reason,
the history says who, when, why and from → to, and `GET /v1/accounts/{id}` shows the state."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from kassa.ledger import transfers

if TYPE_CHECKING:
    from tests.api.conftest import Api

URL = "/v1/admin/accounts/u1/state"


def change(
    api: Api, state: str, reason_code: str = "violation", reason: str = "abuse", **kwargs: Any
) -> Any:
    return api.post(URL, {"state": state, "reason_code": reason_code, "reason": reason}, **kwargs)


def test_an_operator_suspends_an_account_with_a_reason(api: Api) -> None:
    api.account("u1", funds="10")

    response = change(api, "suspended", "serious_breach", "card testing from 40 IPs")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["external_id"], body["state"], body["effective_state"]) == (
        "u1",
        "suspended",
        "suspended",
    )
    [entry] = body["history"]
    assert entry["from_state"] == "active"
    assert entry["to_state"] == "suspended"
    assert entry["reason_code"] == "serious_breach"
    assert entry["reason"] == "card testing from 40 IPs"
    assert entry["actor"] == "api-key:test-admin"
    assert entry["changed_at"] == api.clock.now().isoformat().replace("+00:00", "Z")
    assert api.get("/v1/accounts/u1").json()["status"] == "suspended"
    assert api.get(URL).json() == body


def test_the_history_lists_every_change_newest_first(api: Api) -> None:
    api.account("u1")
    change(api, "suspended")
    api.clock.advance(timedelta(days=1))
    change(api, "active", "other", "appeal accepted")
    api.clock.advance(timedelta(days=1))
    change(api, "terminated", "customer_request", "closed at the customer's request")

    history = api.get(URL).json()["history"]

    assert [(h["from_state"], h["to_state"]) for h in history] == [
        ("active", "terminated"),
        ("suspended", "active"),
        ("active", "suspended"),
    ]
    assert api.get("/v1/accounts/u1").json()["status"] == "terminated"


def test_a_retry_with_the_same_key_records_one_change(api: Api) -> None:
    api.account("u1")
    first = change(api, "frozen", "other", "investigation", key="s1")
    again = change(api, "frozen", "other", "investigation", key="s1")
    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    assert len(again.json()["history"]) == 1
    api.problem(change(api, "suspended", key="s1"), 409, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"state": "banned", "reason_code": "violation", "reason": "x"}, "invalid_account_state"),
        ({"state": "suspended", "reason_code": "because", "reason": "x"}, "invalid_reason_code"),
        ({"state": "suspended", "reason_code": "violation", "reason": ""}, "validation_error"),
        ({"state": "suspended", "reason_code": "violation", "reason": " "}, "invalid_state_reason"),
        ({"state": "suspended", "reason_code": "violation"}, "validation_error"),
    ],
)
def test_unusable_changes_are_refused(api: Api, body: dict[str, Any], code: str) -> None:
    api.account("u1")
    api.problem(api.post(URL, body), 422, code)
    assert api.get(URL).json()["history"] == []


def test_terminated_is_final(api: Api) -> None:
    api.account("u1")
    change(api, "terminated", "serious_breach")

    body = api.problem(change(api, "active", "other"), 409, "illegal_account_state_transition")

    assert "final" in body["detail"]
    api.problem(change(api, "terminated"), 409, "illegal_account_state_transition")


def test_only_admin_keys_change_or_read_states(api: Api) -> None:
    api.account("u1")
    writer = api.key(["accounts:write", "accounts:read"])
    bound = api.key(["accounts:write", "accounts:read"], account="u1")

    for token in (writer, bound):
        api.problem(change(api, "suspended", token=token), 403, "forbidden")
        api.problem(api.get(URL, token), 403, "forbidden")
    assert api.get("/v1/accounts/u1").json()["status"] == "active"


def test_an_unknown_account_is_not_found(api: Api) -> None:
    api.problem(change(api, "suspended"), 404, "account_not_found")
    api.problem(api.get(URL), 404, "account_not_found")


def test_an_account_a_reversal_took_below_zero_reads_frozen(api: Api) -> None:
    api.account("u1", funds="10")
    top_up = uuid.UUID(api.ledger("u1")[0]["transaction_id"])
    hold = api.post("/v1/accounts/u1/holds", {"amount": api.usd("1")})
    assert hold.status_code == 201
    with api.db.transaction() as conn:
        transfers.reverse(
            conn, top_up, now=api.clock.now(), request=None, reason="chargeback", actor="ops"
        )

    assert api.get("/v1/accounts/u1").json()["status"] == "frozen"
    state = api.get(URL).json()
    assert (state["state"], state["effective_state"]) == ("active", "frozen")
    # An operator's suspension says more than the balance does.
    change(api, "suspended")
    assert api.get("/v1/accounts/u1").json()["status"] == "suspended"
