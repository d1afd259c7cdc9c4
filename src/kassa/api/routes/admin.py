"""Operator actions (admin scope): manual balance adjustments with a reason; on the devnet only,
the scenario clock and the market's static rates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from kassa.accounts import service as accounts
from kassa.accounts import views as account_views
from kassa.api.auth import Admin
from kassa.api.context import Ctx
from kassa.api.idempotency import Idem
from kassa.api.openapi import problems_for
from kassa.api.routes.rates import RateOut
from kassa.api.schemas import AdjustmentIn, AdjustmentOut, BalanceOut
from kassa.clock import MovableClock
from kassa.errors import NotFound
from kassa.ledger import transfers
from kassa.ledger.accounts import get_balance
from kassa.ledger.idempotency import Request
from kassa.money import USD
from kassa.pricing import market
from kassa.pricing.model import Symbol

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/adjustments",
    description="Credit or debit a customer's balance by hand, with a reason (admin).",
    responses=problems_for(
        "account_not_found",
        "insufficient_funds",
        "account_frozen",
        "amount_out_of_range",
        "invalid_amount",
        "asset_mismatch",
        "unknown_asset",
    ),
    status_code=201,
    response_model=AdjustmentOut,
)
def create_adjustment(body: AdjustmentIn, caller: Admin, idem: Idem, ctx: Ctx) -> Response:
    amount = body.amount.to_money(USD)
    request = idem.request(
        "admin.adjust",
        {
            "external_id": body.external_id,
            "direction": body.direction,
            "amount": amount.amount,
            "asset": amount.asset.code.value,
            "reason": body.reason,
        },
    )

    def work(conn: Connection, claimed: Request) -> AdjustmentOut:
        account = accounts.get_by_external_id(conn, body.external_id)
        now = ctx.clock.now(conn)
        before = account_views.effective(conn, account)
        transaction_id = transfers.adjust(
            conn,
            account_id=account.ledger_account_id,
            amount=amount,
            direction=body.direction,
            reason=body.reason,
            actor=caller.actor,
            now=now,
            request=claimed,
        )
        # A credit that covers a reversal's shortfall unfreezes the account: its event.
        account_views.emit_if_changed(conn, account, before, now)
        balance = get_balance(conn, account.ledger_account_id)
        return AdjustmentOut(
            transaction_id=transaction_id,
            external_id=account.external_id,
            balance=BalanceOut.of(balance),
        )

    return idem.respond(ctx, request, work, status=201)


class ClockAdvanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    advance_seconds: int = Field(gt=0, le=10 * 365 * 86400, description="How far to jump ahead")


class ClockOut(BaseModel):
    now: datetime
    offset_seconds: int


class ScenarioClockDisabled(NotFound):
    code = "scenario_clock_disabled"
    title = "No scenario clock here"


@router.post(
    "/clock",
    description="Devnet only: move Kassa's clock forward (admin).",
    responses=problems_for("scenario_clock_disabled"),
    response_model=ClockOut,
)
def advance_clock(body: ClockAdvanceIn, caller: Admin, idem: Idem, ctx: Ctx) -> Response:
    """Devnet only: move Kassa's clock forward (e.g. 15 days to try a refund window). Once per
    Idempotency-Key: a retry answers with the first move and does not move the clock again."""
    # Only a movable clock moves: the devnet's scenario clock (kassa_dev.scenario).
    clock = ctx.clock
    if not isinstance(clock, MovableClock):
        raise ScenarioClockDisabled(
            "the clock can only be moved on the devnet (kassa up with devnet = true)"
        )
    request = idem.request("admin.clock", {"advance_seconds": body.advance_seconds})

    def work(conn: Connection, _claimed: Request) -> ClockOut:
        moved = clock.advance(conn, body.advance_seconds)
        return ClockOut(now=clock.now(conn), offset_seconds=int(moved.total_seconds()))

    return idem.respond(ctx, request, work)


class MarketRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: Symbol = Field(description="BTC, ETH, TRX or USDT")
    usd_per_coin: Decimal = Field(
        gt=0, lt=10**12, decimal_places=12, description="The new rate: whole USD per whole coin"
    )


class DevnetMarketDisabled(NotFound):
    code = "devnet_market_disabled"
    title = "No devnet market here"


@router.post(
    "/rates",
    description=(
        "Devnet only: set the market rate of a symbol now (admin); the next quote uses it and "
        "the static source keeps serving it (kassa.pricing.market)."
    ),
    responses=problems_for("devnet_market_disabled"),
    response_model=RateOut,
)
def set_market_rate(body: MarketRateIn, caller: Admin, idem: Idem, ctx: Ctx) -> Response:
    """Devnet only: move the market, e.g. BTC to 50 000 USD while a refund waits in review.
    Once per Idempotency-Key: a retry answers with the first rate and records nothing new."""
    # The devnet is where the scenario clock runs (kassa.wiring.clock_of); nowhere else may a
    # rate be typed in by hand.
    if not isinstance(ctx.clock, MovableClock):
        raise DevnetMarketDisabled(
            "rates can only be set by hand on the devnet (kassa up with devnet = true)"
        )
    rate = body.usd_per_coin
    request = idem.request("admin.rates", {"symbol": body.symbol.value, "usd": str(rate)})

    def work(conn: Connection, _claimed: Request) -> RateOut:
        now = ctx.clock.now(conn)
        return RateOut.of(market.set_rate(conn, body.symbol, rate, now, ctx.pricing.rules))

    return idem.respond(ctx, request, work)
