"""GET /v1/reports/reconciliation: finance's keys read the latest run and its breaks, and may
run one first; other keys are refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from kassa.ledger.tables import ledger_account

if TYPE_CHECKING:
    from tests.api.conftest import Api


def test_finance_runs_and_reads_the_reconciliation_and_its_breaks(api: Api) -> None:
    api.account("42", funds="25.00")
    finance = api.key(["reports:read"], name="finance")
    empty = api.get("/v1/reports/reconciliation", finance)
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"latest_run": None, "breaks": []}

    clean = api.get("/v1/reports/reconciliation", finance, params={"run": "true"}).json()
    assert clean["latest_run"]["breaks"] == {"new": 0, "persisting": 0, "resolved": 0}
    assert clean["latest_run"]["solvency"]["liabilities_usd_micro"] == "25000000"
    assert clean["breaks"] == []

    with api.db.transaction() as conn:  # someone edits a stored balance by hand
        row = conn.execute(select(ledger_account).where(ledger_account.c.kind == "user")).one()
        conn.execute(
            update(ledger_account)
            .where(ledger_account.c.id == row.id)
            .values(credits_posted=int(row.credits_posted) + 1)
        )
    found = api.get("/v1/reports/reconciliation", api.admin, params={"run": "true"}).json()
    [only] = found["breaks"]
    assert (only["class"], only["leg"], only["status"]) == ("posted_sums_mismatch", "ledger", "new")
    assert (only["expected"], only["actual"], only["difference"]) == (
        "-25000000",
        "-25000001",
        "-1",
    )
    assert found["latest_run"]["breaks"]["new"] == 1

    reader = api.key(["accounts:read"], name="support")
    api.problem(api.get("/v1/reports/reconciliation", reader), 403, "forbidden")
