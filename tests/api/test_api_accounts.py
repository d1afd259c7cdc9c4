"""Customer accounts over HTTP: create (idempotently), read, balance and paged ledger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.api.conftest import Api


def test_create_and_get_account(api: Api) -> None:
    created = api.post("/v1/accounts", {"external_id": "user-1", "metadata": {"plan": "pro"}})
    assert created.status_code == 201
    body = created.json()
    assert body["external_id"] == "user-1"
    assert body["status"] == "active"
    assert body["metadata"] == {"plan": "pro"}
    assert body["balance"] == {
        "asset": "USD",
        "posted": {"amount": "0.00", "asset": "USD"},
        "pending": {"amount": "0.00", "asset": "USD"},
        "available": {"amount": "0.00", "asset": "USD"},
        "frozen": False,
    }
    fetched = api.get("/v1/accounts/user-1")
    assert fetched.status_code == 200
    assert fetched.json() == body


def test_duplicate_external_id_is_409(api: Api) -> None:
    api.account("user-1")
    response = api.post("/v1/accounts", {"external_id": "user-1"})
    api.problem(response, 409, "account_exists")


def test_replay_with_same_key_returns_same_account_and_status(api: Api) -> None:
    first = api.post("/v1/accounts", {"external_id": "user-1"}, key="create-user-1")
    again = api.post("/v1/accounts", {"external_id": "user-1"}, key="create-user-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()


def test_same_key_with_different_body_is_409(api: Api) -> None:
    api.post("/v1/accounts", {"external_id": "user-1"}, key="k1")
    response = api.post("/v1/accounts", {"external_id": "user-2"}, key="k1")
    api.problem(response, 409, "idempotency_key_reused")
    api.problem(api.get("/v1/accounts/user-2"), 404, "account_not_found")


def test_idempotency_keys_are_scoped_per_api_key(api: Api) -> None:
    other = api.key(["accounts:write"])
    api.post("/v1/accounts", {"external_id": "user-1"}, key="shared")
    response = api.post("/v1/accounts", {"external_id": "user-2"}, token=other, key="shared")
    assert response.status_code == 201


def test_post_without_idempotency_key_is_400_and_creates_nothing(api: Api) -> None:
    response = api.post("/v1/accounts", {"external_id": "user-1"}, key=None)
    api.problem(response, 400, "idempotency_key_required")
    api.problem(api.get("/v1/accounts/user-1"), 404, "account_not_found")


def test_unusable_idempotency_key_is_400(api: Api) -> None:
    response = api.post("/v1/accounts", {"external_id": "user-1"}, key="has space")
    api.problem(response, 400, "invalid_idempotency_key")


def test_invalid_external_id_is_422(api: Api) -> None:
    response = api.post("/v1/accounts", {"external_id": "no spaces allowed"})
    api.problem(response, 422, "invalid_external_id")


def test_unknown_fields_are_a_validation_error(api: Api) -> None:
    response = api.post("/v1/accounts", {"external_id": "user-1", "externalId": "x"})
    body = api.problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "externalId"]


def test_malformed_json_is_a_validation_error(api: Api) -> None:
    response = api.client.post(
        "/v1/accounts",
        content=b'{"external_id": ',
        headers={
            "Authorization": f"Bearer {api.admin}",
            "Idempotency-Key": "k",
            "Content-Type": "application/json",
        },
    )
    api.problem(response, 422, "validation_error")


def test_missing_account_is_404(api: Api) -> None:
    api.problem(api.get("/v1/accounts/nobody"), 404, "account_not_found")
    api.problem(api.get("/v1/accounts/nobody/balance"), 404, "account_not_found")


def test_balance_follows_adjustments(api: Api) -> None:
    api.account("user-1", funds="12.50")
    api.adjust("user-1", "debit", "2.25")
    balance = api.balance("user-1")
    assert balance["posted"] == {"amount": "10.25", "asset": "USD"}
    assert balance["available"] == {"amount": "10.25", "asset": "USD"}
    assert balance["frozen"] is False


def test_ledger_pages_newest_first_without_gaps_or_duplicates(api: Api) -> None:
    api.account("user-1")
    for cents in range(1, 6):
        api.adjust("user-1", "credit", f"0.0{cents}")
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        response = api.get("/v1/accounts/user-1/ledger", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(page["entries"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [e["amount"]["amount"] for e in seen] == ["0.05", "0.04", "0.03", "0.02", "0.01"]
    ids = [e["posting_id"] for e in seen]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 5
    assert {e["kind"] for e in seen} == {"adjustment"}


def test_ledger_limit_and_cursor_are_validated(api: Api) -> None:
    api.account("user-1")
    for limit in (0, 201):
        response = api.get("/v1/accounts/user-1/ledger", params={"limit": limit})
        api.problem(response, 422, "validation_error")
    response = api.get("/v1/accounts/user-1/ledger", params={"cursor": "not-a-cursor"})
    api.problem(response, 422, "invalid_cursor")


def test_ledger_of_exact_page_size_has_no_next_cursor(api: Api) -> None:
    api.account("user-1")
    api.adjust("user-1", "credit", "1")
    api.adjust("user-1", "credit", "2")
    page = api.get("/v1/accounts/user-1/ledger", params={"limit": 2}).json()
    assert len(page["entries"]) == 2
    assert page["next_cursor"] is None
