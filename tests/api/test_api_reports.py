"""GET /v1/reports/…: the reports as JSON for a reports:read key; other keys and bound keys are
refused, bad periods are 422 invalid_period. The figures themselves are checked in
tests/reports/test_finance_reports.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Api  # type: ignore[import-not-found]


def test_reports_over_the_api(api: Api) -> None:
    api.account("42", funds="25.00")  # the clock: 2026-11-20 14:03:11Z
    api.adjust("42", "debit", "5.00")
    finance = api.key(["reports:read"], name="finance")
    day = {"period": "2026-11-20", "tz": "Europe/Berlin"}

    body = api.get("/v1/reports/statement", finance, params={**day, "external_id": "42"}).json()
    assert body["report"] == "statement"
    assert body["columns"] == [
        "time",
        "transaction_id",
        "kind",
        "memo",
        "credit",
        "debit",
        "balance",
    ]
    assert [(r["kind"], r["credit"], r["debit"], r["balance"]) for r in body["rows"]] == [
        ("opening_balance", "", "", "0.00"),
        ("adjustment", "25.00", "", "25.00"),
        ("adjustment", "", "5.00", "20.00"),
        ("closing_balance", "", "", "20.00"),
    ]
    assert body["meta"]["start"] == "2026-11-19T23:00:00Z"

    for name in ("activity", "fees", "fx", "sla"):
        response = api.get(f"/v1/reports/{name}", finance, params=day)
        assert response.status_code == 200, response.text
        assert response.json()["report"] == name

    balances = api.get("/v1/reports/trial-balance", finance, params={"at": "2026-11-21T00:00:00Z"})
    rows = {r["account"]: r for r in balances.json()["rows"]}
    assert rows["house:adjustments:USD"]["balance"] == "20.00"
    api.problem(
        api.get("/v1/reports/trial-balance", finance, params={"at": "yesterday"}),
        422,
        "invalid_time",
    )

    api.problem(
        api.get("/v1/reports/fees", finance, params={"period": "2026-13"}), 422, "invalid_period"
    )
    api.problem(
        api.get("/v1/reports/fees", finance, params={"period": "2026-11", "tz": "Mars/Olympus"}),
        422,
        "invalid_period",
    )
    api.problem(
        api.get(
            "/v1/reports/statement", finance, params={"period": "2026-11", "external_id": "nobody"}
        ),
        404,
        "account_not_found",
    )
    reader = api.key(["accounts:read"], name="reader")
    api.problem(api.get("/v1/reports/activity", reader, params=day), 403, "forbidden")
    bound = api.key(["reports:read"], account="42", name="bound")
    api.problem(api.get("/v1/reports/activity", bound, params=day), 403, "forbidden")
