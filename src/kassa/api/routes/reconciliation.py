"""GET /v1/reports/reconciliation: the reconciliation of the ledger, the records and the chains
(`kassa.reports.reconciliation`, docs/reconciliation.md), for keys with ``reports:read``.

It answers the latest run's report (its counts, coverage and notes) and the breaks: the open
ones (new, persisting) by default, every one with ``include_resolved=true``. ``run=true`` runs a
reconciliation first — it reads every configured chain's node, so it can take a while on a large
book; the worker runs one every day on its own. The breaks are the operator's: a key bound to one
customer account is refused.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from kassa.api.auth import ReportsReader, refuse_if_bound
from kassa.api.context import Ctx
from kassa.api.openapi import problems_for
from kassa.reports.reconciliation import store
from kassa.reports.reconciliation.run import reconciler_for

router = APIRouter(prefix="/v1/reports", tags=["reports"])


class BreakOut(BaseModel):
    class_: str = Field(alias="class", description="What kind of discrepancy (docs)")
    leg: str = Field(description="ledger, records, chains or solvency")
    chain: str | None
    asset: str | None = Field(description="The asset of the amounts (minor units)")
    object_id: str = Field(description="The deposit, payout, account, address or key")
    expected: str | None = Field(description="Minor units of `asset` (integer string)")
    actual: str | None
    difference: str | None = Field(description="actual - expected")
    detail: str
    status: str = Field(description="new, persisting or resolved")
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None

    model_config = {"populate_by_name": True}


class CountsOut(BaseModel):
    new: int
    persisting: int
    resolved: int


class ChainReadOut(BaseModel):
    final_height: int
    deposits_checked_at: int = Field(description="Lower of the final height and the watcher's")
    deposit_addresses: int
    confirmed_payouts: int


class AssetCoverageOut(BaseModel):
    coins: str = Field(description="On the deposit addresses and hot wallets, minor units")
    bid: str | None = Field(description="USD per coin it is valued at")
    usd_micro: str | None
    reserved_payouts: str = Field(description="Open payouts in this asset, minor units")
    coverage: str | None = Field(description="coins / reserved payouts (null: none reserved)")


class SolvencyOut(BaseModel):
    liabilities_usd_micro: str = Field(description="Customer balances + payout clearing")
    reserved_payouts_usd_micro: str
    assets_usd_micro: str
    coverage: str | None = Field(description="assets / liabilities (null: nothing owed)")
    assets: dict[str, AssetCoverageOut]


class RunOut(BaseModel):
    run_id: str
    trigger: str = Field(description="cli, api or worker")
    started_at: str
    breaks: CountsOut
    chains: dict[str, ChainReadOut]
    solvency: SolvencyOut
    notes: list[str] = Field(description="What this run could not check, and why")
    checked: list[str] = Field(description="leg:chain scopes this run checked")


class ReconciliationOut(BaseModel):
    latest_run: RunOut | None = Field(description="The latest run (null before the first one)")
    breaks: list[BreakOut]


@router.get(
    "/reconciliation",
    description=(
        "The latest reconciliation (coverage, counts, notes) and its breaks — open ones unless "
        "include_resolved; run=true reconciles now first (reads every chain's node)."
    ),
    responses=problems_for(),
    response_model_by_alias=True,
)
def reconciliation(
    ctx: Ctx,
    caller: ReportsReader,
    run: bool = Query(default=False, description="Reconcile now before answering"),
    include_resolved: bool = Query(default=False, description="Also list resolved breaks"),
) -> ReconciliationOut:
    refuse_if_bound(caller, "read the reconciliation")
    if run:
        reconciler = reconciler_for(ctx.payouts.chains, ctx.database, ctx.clock)
        try:
            reconciler.run(trigger="api")
        finally:
            reconciler.close()
    with ctx.database.transaction() as conn:
        latest = store.latest_run(conn)
        rows = store.open_breaks(conn, include_resolved=include_resolved)
    return ReconciliationOut(
        latest_run=None if latest is None else RunOut.model_validate(latest),
        breaks=[BreakOut.model_validate(row) for row in rows],
    )
