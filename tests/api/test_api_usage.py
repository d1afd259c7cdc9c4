"""Usage over HTTP: a batch of metered events, charged once per event id, refused whole with a
clear code when it cannot be charged, and answering a retry with the first answer."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.api.conftest import Api

URL = "/v1/accounts/u1/usage"


def ev(event_id: str, amount: Any = "0.25", description: str = "GET /v2/search") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "amount": {"amount": amount, "asset": "USD"},
        "description": description,
    }


def test_a_batch_is_charged_in_one_entry_and_reported_per_event(api: Api) -> None:
    api.account("u1", funds="10")

    response = api.post(URL, {"events": [ev("a", "0.25"), ev("b", "1.000001")]})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["charged"] == {"amount": "1.250001", "asset": "USD"}
    assert (body["charged_events"], body["duplicate_events"]) == (2, 0)
    assert body["events"] == [
        {"event_id": "a", "status": "charged"},
        {"event_id": "b", "status": "charged"},
    ]
    assert body["transaction_id"] is not None
    assert body["last_usage_at"] == api.clock.now().isoformat().replace("+00:00", "Z")
    assert body["balance"]["available"]["amount"] == "8.749999"
    ledger = api.ledger("u1")
    assert [(e["kind"], e["amount"]["amount"]) for e in ledger[:1]] == [("usage", "-1.250001")]
    assert ledger[0]["transaction_id"] == body["transaction_id"]


def test_a_retry_with_the_same_key_gets_the_same_answer(api: Api) -> None:
    api.account("u1", funds="10")
    batch = {"events": [ev("a"), ev("b")]}

    first = api.post(URL, batch, key="batch-1")
    again = api.post(URL, batch, key="batch-1")

    assert again.status_code == first.status_code == 200
    assert again.json() == first.json()
    assert api.available("u1") == "9.50"


def test_a_retry_under_a_new_key_reports_the_events_as_duplicates(api: Api) -> None:
    api.account("u1", funds="10")
    api.post(URL, {"events": [ev("a"), ev("b")]})

    again = api.post(URL, {"events": [ev("b"), ev("c")]})

    assert again.status_code == 200
    assert again.json()["events"] == [
        {"event_id": "b", "status": "duplicate"},
        {"event_id": "c", "status": "charged"},
    ]
    assert again.json()["charged"]["amount"] == "0.25"
    assert api.available("u1") == "9.25"


def test_the_same_key_with_another_batch_is_refused(api: Api) -> None:
    api.account("u1", funds="10")
    api.post(URL, {"events": [ev("a")]}, key="batch-1")

    response = api.post(URL, {"events": [ev("b")]}, key="batch-1")

    api.problem(response, 409, "idempotency_key_reused")


def test_an_event_id_reused_with_another_amount_refuses_the_batch(api: Api) -> None:
    api.account("u1", funds="10")
    api.post(URL, {"events": [ev("a", "0.25")]})

    response = api.post(URL, {"events": [ev("new"), ev("a", "0.26")]})

    body = api.problem(response, 409, "usage_event_conflict")
    assert "'a'" in body["detail"]
    assert api.available("u1") == "9.75"


def test_a_batch_the_balance_cannot_cover_is_refused_whole(api: Api) -> None:
    api.account("u1", funds="1")

    response = api.post(URL, {"events": [ev("a", "0.60"), ev("b", "0.41")]})

    api.problem(response, 409, "insufficient_funds")
    assert api.available("u1") == "1.00"
    assert api.ledger("u1")[0]["kind"] == "adjustment"
    # Nothing was recorded: the same events go through once covered.
    api.adjust("u1", "credit", "0.01")
    assert api.post(URL, {"events": [ev("a", "0.60"), ev("b", "0.41")]}).status_code == 200


@pytest.mark.parametrize(
    ("amount", "code", "detail"),
    [
        (0.25, "invalid_amount", "decimal strings"),
        ("0", "invalid_amount", "events[1].amount: amount must be greater than zero"),
        ("-0.25", "invalid_amount", "events[1].amount"),
        ("0.0000001", "invalid_amount", "events[1].amount"),
        ("1e3", "invalid_amount", "events[1].amount"),
        ("1000000.000001", "invalid_usage_event", "exceeds the limit"),
        ("9" * 90, "amount_out_of_range", "events[1].amount"),
    ],
)
def test_bad_amounts_refuse_the_batch(api: Api, amount: Any, code: str, detail: str) -> None:
    api.account("u1", funds="10")

    response = api.post(URL, {"events": [ev("ok"), ev("bad", amount)]})

    body = api.problem(response, 422, code)
    assert detail in body["detail"]
    assert api.available("u1") == "10.00"


def test_an_amount_in_another_asset_is_refused(api: Api) -> None:
    api.account("u1", funds="10")
    event = ev("a")
    event["amount"]["asset"] = "BTC"

    api.problem(api.post(URL, {"events": [event]}), 422, "asset_mismatch")


@pytest.mark.parametrize(
    ("events", "code"),
    [
        ([], "invalid_usage_batch"),
        ([ev(f"e{i}", "0.000001") for i in range(1001)], "invalid_usage_batch"),
        ([ev("a"), ev("a")], "invalid_usage_batch"),
        ([ev("with space")], "invalid_usage_event"),
        ([ev("a", description="")], "invalid_usage_event"),
    ],
    ids=["empty", "1001 events", "repeated id", "bad id", "no description"],
)
def test_unusable_batches_are_refused(api: Api, events: list[dict[str, Any]], code: str) -> None:
    api.account("u1", funds="10")
    api.problem(api.post(URL, {"events": events}), 422, code)
    assert api.available("u1") == "10.00"


def test_a_batch_of_1000_events_goes_through_in_one_request(api: Api) -> None:
    """The issue's "fast enough for batches of 1 000", end to end (the figure shows with -s)."""
    api.account("u1", funds="100")
    # Warm up: the first request compiles and caches the statements.
    assert api.post(URL, {"events": [ev(f"warm-{i}", "0.001") for i in range(10)]}).is_success
    batch = {"events": [ev(f"call-{i:04d}", "0.001") for i in range(1000)]}

    started = time.perf_counter()
    response = api.post(URL, batch)
    elapsed = time.perf_counter() - started

    print(f"\n[{api.db.dialect}] POST of a 1000-event usage batch: {elapsed * 1000:.0f} ms")
    assert response.status_code == 200, response.text
    assert response.json()["charged"]["amount"] == "1.00"
    assert api.available("u1") == "98.99"


@pytest.mark.parametrize(
    ("state", "code"),
    [
        ("suspended", "account_suspended"),
        ("terminated", "account_terminated"),
        ("frozen", "account_frozen"),
    ],
)
def test_an_account_that_is_not_active_cannot_use(api: Api, state: str, code: str) -> None:
    api.account("u1", funds="10")
    changed = api.post(
        "/v1/admin/accounts/u1/state",
        {"state": state, "reason_code": "violation", "reason": "abuse"},
    )
    assert changed.status_code == 200, changed.text

    api.problem(api.post(URL, {"events": [ev("a")]}), 409, code)
    assert api.available("u1") == "10.00"


def test_keys_see_only_their_own_account_and_need_the_write_scope(api: Api) -> None:
    api.account("u1", funds="10")
    api.account("u2", funds="10")
    bound = api.key(["accounts:write"], account="u2")
    reader = api.key(["accounts:read"])

    api.problem(api.post(URL, {"events": [ev("a")]}, token=bound), 404, "account_not_found")
    api.problem(api.post(URL, {"events": [ev("a")]}, token=reader), 403, "forbidden")
    api.problem(api.post(URL, {"events": [ev("a")]}, key=None), 400, "idempotency_key_required")
    assert api.post("/v1/accounts/u2/usage", {"events": [ev("a")]}, token=bound).status_code == 200
    assert api.available("u1") == "10.00"
