"""Holds on a customer's USD balance: reserve, then capture (all or part) or void.

A hold debits the customer's ledger account and, on capture, credits house revenue. Unresolved
holds expire (the worker sweeps them; a capture after expiry is refused and expires it).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import Connection

from kassa.api.auth import Reader, Writer, customer_for, hold_for
from kassa.api.context import Ctx
from kassa.api.idempotency import Idem
from kassa.api.openapi import problems_for
from kassa.api.schemas import CaptureIn, HoldCreateIn, HoldOut
from kassa.api.threads import DatabaseRoute
from kassa.ledger import holds, house
from kassa.ledger.idempotency import Request
from kassa.money import USD
from kassa.payouts import store
from kassa.payouts.errors import HoldOwnedByPayout

router = APIRouter(prefix="/v1", tags=["holds"], route_class=DatabaseRoute)


@router.post(
    "/accounts/{external_id}/holds",
    description=("Reserve an amount of the balance until it is captured, voided or expires."),
    responses=problems_for(
        "account_not_found",
        "insufficient_funds",
        "account_frozen",
        "account_suspended",
        "account_terminated",
        "invalid_amount",
        "amount_out_of_range",
        "asset_mismatch",
        "unknown_asset",
    ),
    status_code=201,
    response_model=HoldOut,
)
def create_hold(
    external_id: str, body: HoldCreateIn, caller: Writer, idem: Idem, ctx: Ctx
) -> Response:
    amount = body.amount.to_money(USD)
    request = idem.request(
        "holds.create",
        {
            "external_id": external_id,
            "amount": amount.amount,
            "asset": amount.asset.code.value,
            "expires_in_seconds": body.expires_in_seconds,
            "memo": body.memo,
        },
    )

    def work(conn: Connection, claimed: Request) -> HoldOut:
        now = ctx.clock.now(conn)
        account = customer_for(conn, caller, external_id, now=now)
        hold = holds.create_hold(
            conn,
            debit_account_id=account.ledger_account_id,
            credit_account_id=house.revenue(conn, USD, now).id,
            amount=amount,
            now=now,
            request=claimed,
            expires_at=now + timedelta(seconds=body.expires_in_seconds),
            memo=body.memo,
            actor=caller.actor,
        )
        return HoldOut.of(hold)

    return idem.respond(ctx, request, work, status=201)


@router.get(
    "/holds/{hold_id}",
    description="A hold; one past its expiry reads `expired`.",
    responses=problems_for("hold_not_found"),
)
def get_hold(hold_id: str, caller: Reader, ctx: Ctx) -> HoldOut:
    with ctx.database.transaction() as conn:
        return HoldOut.of(hold_for(conn, caller, hold_id))


@router.post(
    "/holds/{hold_id}/capture",
    description=("Charge all or part of a pending hold into revenue; the rest is released."),
    responses=problems_for(
        "hold_not_found",
        "hold_already_resolved",
        "hold_expired",
        "hold_owned_by_payout",
        "capture_exceeds_hold",
        "invalid_amount",
        "amount_out_of_range",
        "asset_mismatch",
        "unknown_asset",
    ),
    response_model=HoldOut,
)
def capture_hold(
    hold_id: str, caller: Writer, idem: Idem, ctx: Ctx, body: CaptureIn | None = None
) -> Response:
    amount_text = None if body is None or body.amount is None else body.amount
    request = idem.request(
        "holds.capture",
        {
            "hold_id": hold_id,
            "amount": None if amount_text is None else amount_text.to_money(USD).amount,
        },
    )

    def work(conn: Connection, claimed: Request) -> HoldOut:
        hold = hold_for(conn, caller, hold_id)
        _not_a_payouts(conn, hold.id)
        amount = None if amount_text is None else amount_text.to_money(hold.amount.asset)
        captured = holds.capture_hold(
            conn,
            hold.id,
            now=ctx.clock.now(conn),
            request=claimed,
            amount=amount,
            actor=caller.actor,
        )
        return HoldOut.of(captured)

    return idem.respond(ctx, request, work)


@router.post(
    "/holds/{hold_id}/void",
    description="Release a pending hold's funds back to the balance.",
    responses=problems_for(
        "hold_not_found", "hold_already_resolved", "hold_expired", "hold_owned_by_payout"
    ),
    response_model=HoldOut,
)
def void_hold(hold_id: str, caller: Writer, idem: Idem, ctx: Ctx) -> Response:
    request = idem.request("holds.void", {"hold_id": hold_id})

    def work(conn: Connection, claimed: Request) -> HoldOut:
        hold = hold_for(conn, caller, hold_id)
        _not_a_payouts(conn, hold.id)
        voided = holds.void_hold(conn, hold.id, now=ctx.clock.now(conn), request=claimed)
        return HoldOut.of(voided)

    return idem.respond(ctx, request, work)


def _not_a_payouts(conn: Connection, hold_id: uuid.UUID) -> None:
    """Refuse to settle a refund's or withdrawal's hold here: only the payout worker (on
    confirmation) and the request's rejection or cancellation may."""
    owner = store.holding(conn, hold_id)
    if owner is not None:
        raise HoldOwnedByPayout(
            f"hold {hold_id} reserves payout request {owner}: it is captured when the "
            "payout is confirmed on chain, and released by rejecting or cancelling the request"
        )
