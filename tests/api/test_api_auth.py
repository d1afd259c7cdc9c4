"""Every route needs a live key with the right scope; a key bound to one customer account sees
nothing of any other (and cannot even learn that the other exists)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kassa.apikeys import service as apikeys
from kassa.db.migrate import head_revision

if TYPE_CHECKING:
    from tests.api.conftest import Api


def test_no_key_is_401_problem_with_bearer_challenge(api: Api) -> None:
    response = api.client.get("/v1/health")
    api.problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_malformed_unknown_and_wrong_secret_keys_are_401(api: Api) -> None:
    good = api.key(["accounts:read"])
    wrong_secret = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    unknown_prefix = "kassa_" + "Z" * 12 + good[len("kassa_") + 12 :]
    for token in ("nonsense", "kassa_short", wrong_secret, unknown_prefix):
        api.problem(api.get("/v1/health", token), 401, "unauthenticated")


def test_basic_auth_scheme_is_401(api: Api) -> None:
    response = api.client.get("/v1/health", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    api.problem(response, 401, "unauthenticated")


def test_revoked_key_is_401(api: Api) -> None:
    token = api.key(["accounts:read"])
    assert api.get("/v1/health", token).status_code == 200
    with api.db.transaction() as conn:
        apikeys.revoke_key(conn, token[len("kassa_") :][:12], api.clock.now())
    body = api.problem(api.get("/v1/health", token), 401, "unauthenticated")
    assert body["detail"] == "invalid API key"  # as for an unknown key


def test_missing_scope_is_403(api: Api) -> None:
    api.account("u1")
    reader = api.key(["accounts:read"])
    writer = api.key(["accounts:write"])
    api.problem(api.post("/v1/accounts", {"external_id": "u2"}, token=reader), 403, "forbidden")
    api.problem(api.get("/v1/accounts/u1", writer), 403, "forbidden")
    adjustment = {"external_id": "u1", "direction": "credit", "amount": api.usd("1"), "reason": "x"}
    api.problem(api.post("/v1/admin/adjustments", adjustment, token=writer), 403, "forbidden")


def test_scope_is_checked_before_the_idempotency_header(api: Api) -> None:
    reader = api.key(["accounts:read"])
    response = api.post("/v1/accounts", {"external_id": "u2"}, token=reader, key=None)
    api.problem(response, 403, "forbidden")


def test_admin_implies_every_scope(api: Api) -> None:
    api.account("u1")
    assert api.get("/v1/accounts/u1").status_code == 200


def test_bound_key_reads_only_its_own_account_and_gets_404_for_others(api: Api) -> None:
    api.account("mine")
    api.account("theirs")
    token = api.key(["accounts:read", "accounts:write"], account="mine")
    assert api.get("/v1/accounts/mine", token).json()["external_id"] == "mine"
    other = api.problem(api.get("/v1/accounts/theirs", token), 404, "account_not_found")
    missing = api.problem(api.get("/v1/accounts/nobody", token), 404, "account_not_found")
    # Same answer whether the other account exists or not: nothing leaks.
    assert other["detail"] == missing["detail"].replace("nobody", "theirs")
    for path in ("/v1/accounts/theirs/balance", "/v1/accounts/theirs/ledger"):
        api.problem(api.get(path, token), 404, "account_not_found")
    hold = {"amount": api.usd("1")}
    response = api.post("/v1/accounts/theirs/holds", hold, token=token)
    api.problem(response, 404, "account_not_found")


def test_bound_key_cannot_create_accounts(api: Api) -> None:
    api.account("mine")
    token = api.key(["accounts:write"], account="mine")
    response = api.post("/v1/accounts", {"external_id": "new"}, token=token)
    api.problem(response, 403, "forbidden")


def test_bound_key_cannot_see_or_touch_another_accounts_holds(api: Api) -> None:
    api.account("mine", funds="10")
    api.account("theirs", funds="10")
    theirs = api.post("/v1/accounts/theirs/holds", {"amount": api.usd("2")}).json()["id"]
    token = api.key(["accounts:read", "accounts:write"], account="mine")
    api.problem(api.get(f"/v1/holds/{theirs}", token), 404, "hold_not_found")
    for action in ("capture", "void"):
        response = api.post(f"/v1/holds/{theirs}/{action}", token=token)
        api.problem(response, 404, "hold_not_found")
    assert api.get(f"/v1/holds/{theirs}").json()["status"] == "pending"
    mine = api.post("/v1/accounts/mine/holds", {"amount": api.usd("2")}, token=token)
    assert mine.status_code == 201
    assert api.get(f"/v1/holds/{mine.json()['id']}", token).status_code == 200


def test_health_needs_any_valid_key_and_reports_the_database(api: Api) -> None:
    token = api.key(["accounts:read"])
    response = api.get("/v1/health", token)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}  # internals are for admin keys only
    assert api.get("/v1/health").json() == {
        "status": "ok",
        "database": api.db.dialect,
        "migration": head_revision(),
        "watchers": [],
        "nodes": [],
    }


def test_unknown_route_is_404_problem(api: Api) -> None:
    api.problem(api.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_problem(api: Api) -> None:
    # With a key: without one, every /v1/ request is refused with 401 before routing.
    response = api.client.delete("/v1/health", headers={"Authorization": f"Bearer {api.admin}"})
    api.problem(response, 405, "method_not_allowed")


def test_openapi_and_docs_are_public(api: Api) -> None:
    schema = api.client.get("/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/v1/accounts/{external_id}/holds" in paths
    assert "/v1/holds/{hold_id}/capture" in paths
    assert "HTTPBearer" in schema.json()["components"]["securitySchemes"]
    assert api.client.get("/docs").status_code == 200
