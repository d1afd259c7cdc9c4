"""The overview page: what an operator checks first, read in one short transaction.

Solvency (liabilities, assets, coverage) and the open breaks come from the latest
reconciliation run (`kassa.reports.reconciliation`); the review queue, payouts by state, the
watchers, the hot wallets' book balances and the rates' freshness from the tables the metrics
read too. Nothing here calls a chain node: the page stays fast when a node is slow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import Connection, func, select

from kassa.api.console.web import PREFIX, Operator, render
from kassa.api.context import Ctx
from kassa.deposits.watcher import WatcherStatus, watcher_status
from kassa.ledger.model import AccountKind
from kassa.ledger.tables import ledger_account
from kassa.money import USD, Money, asset
from kassa.payouts.model import RequestStatus
from kassa.payouts.tables import payout_request
from kassa.pricing.tables import rate_sample
from kassa.reports.reconciliation import store as reconciliation

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Overview:
    now: datetime
    run: dict[str, Any] | None
    liabilities: Money | None
    assets: Money | None
    open_breaks: int
    queue_size: int
    queue_oldest: datetime | None
    payouts: list[tuple[str, str, int]]
    watchers: list[WatcherStatus]
    hot_wallets: list[tuple[str, Money]]
    rates: list[tuple[str, datetime, float]]
    """Symbol, latest live sample, its age in seconds."""


def _usd_micro(text: str | None) -> Money | None:
    return None if text is None else Money(int(text), USD)


def read(conn: Connection, now: datetime) -> Overview:
    run = reconciliation.latest_run(conn)
    solvency = (run or {}).get("solvency") or {}
    payouts: list[tuple[str, str, int]] = []
    queue_size, queue_oldest = 0, None
    for kind, status, count, oldest in conn.execute(
        select(
            payout_request.c.kind,
            payout_request.c.status,
            func.count(),
            func.min(payout_request.c.created_at),
        )
        .group_by(payout_request.c.kind, payout_request.c.status)
        .order_by(payout_request.c.status, payout_request.c.kind)
    ):
        payouts.append((kind, status, int(count)))
        if status == RequestStatus.PENDING_REVIEW:
            queue_size += int(count)
            if queue_oldest is None or oldest < queue_oldest:
                queue_oldest = oldest
    hot = [
        (
            row.code,
            Money(int(row.debits_posted) - int(row.credits_posted), asset(row.asset)),
        )
        for row in conn.execute(
            select(ledger_account)
            .where(
                ledger_account.c.kind == AccountKind.WALLET.value,
                ledger_account.c.code.like("wallet:%-hot:%"),
            )
            .order_by(ledger_account.c.code)
        )
    ]
    rates = [
        (symbol, at, max((now - at).total_seconds(), 0.0))
        for symbol, at in conn.execute(
            select(rate_sample.c.symbol, func.max(rate_sample.c.sampled_at))
            .where(rate_sample.c.kind == "live")
            .group_by(rate_sample.c.symbol)
            .order_by(rate_sample.c.symbol)
        )
    ]
    return Overview(
        now=now,
        run=run,
        liabilities=_usd_micro(solvency.get("liabilities_usd_micro")),
        assets=_usd_micro(solvency.get("assets_usd_micro")),
        open_breaks=len(reconciliation.open_breaks(conn)),
        queue_size=queue_size,
        queue_oldest=queue_oldest,
        payouts=payouts,
        watchers=watcher_status(conn),
        hot_wallets=hot,
        rates=rates,
    )


@router.get("/")
def overview(request: Request, session: Operator, ctx: Ctx) -> HTMLResponse:
    with ctx.database.transaction() as conn:
        found = read(conn, ctx.clock.now(conn))
    return render(request, "overview.html", session, section="overview", o=found)
