"""Activations: a price reserved from the balance for a window, then fulfilled or refunded.

`POST /v1/accounts/{id}/activations` reserves the price (a ledger hold) for `window_seconds`
(default 20 minutes). `…/{activation_id}/fulfil` charges it; that is final. `…/cancel` before
the window ends returns the price at once. An activation whose window ends unfulfilled reads as
`expired` at once and its price returns with the worker's next hold sweep (every 15 s by
default) — or immediately when someone tries to fulfil it, which is refused
(`activation_expired`). New activations are refused for suspended, terminated and frozen
accounts; fulfilling or cancelling one already reserved is not.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from kassa.accounts.service import CustomerAccount
from kassa.api.auth import Reader, Writer, customer_for
from kassa.api.context import Ctx
from kassa.api.idempotency import Idem
from kassa.api.openapi import problems_for
from kassa.api.schemas import AmountIn, AmountOut
from kassa.api.threads import DatabaseRoute
from kassa.ledger.idempotency import Request
from kassa.money import USD
from kassa.spending import activations
from kassa.spending.activations import Activation
from kassa.spending.errors import ActivationNotFound
from kassa.spending.views import activation_view

router = APIRouter(prefix="/v1/accounts", tags=["activations"], route_class=DatabaseRoute)

DEFAULT_WINDOW_SECONDS = int(activations.DEFAULT_WINDOW.total_seconds())
MAX_WINDOW_SECONDS = int(activations.MAX_WINDOW.total_seconds())


class ActivationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price: AmountIn = Field(description="Reserved now, charged on fulfilment")
    window_seconds: int = Field(
        default=DEFAULT_WINDOW_SECONDS,
        ge=1,
        le=MAX_WINDOW_SECONDS,
        strict=True,
        description="Time allowed for fulfilment (default 20 minutes); unfulfilled, the "
        "price returns to the balance",
    )
    description: str | None = Field(
        default=None, max_length=activations.MAX_DESCRIPTION_LENGTH, examples=["number +4420…"]
    )


class ActivationOut(BaseModel):
    id: uuid.UUID
    status: str = Field(examples=["pending", "fulfilled", "cancelled", "expired"])
    refunded: bool = Field(description="The price is back in the balance")
    price: AmountOut
    window_seconds: int
    hold_id: uuid.UUID = Field(description="The ledger hold reserving the price")
    description: str | None
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, activation: Activation) -> ActivationOut:
        """As its events carry it (`kassa.spending.views`): one view for both."""
        return cls.model_validate(activation_view(activation))


def _activation_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ActivationNotFound(f"activation {text} does not exist") from None


@router.post(
    "/{external_id}/activations",
    description=("Reserve a price for a window; fulfil to charge it, cancel to return it."),
    responses=problems_for(
        "account_not_found",
        "insufficient_funds",
        "account_frozen",
        "account_suspended",
        "account_terminated",
        "invalid_activation",
        "invalid_amount",
        "amount_out_of_range",
        "asset_mismatch",
        "unknown_asset",
    ),
    status_code=201,
    response_model=ActivationOut,
)
def reserve_activation(
    external_id: str, body: ActivationIn, caller: Writer, idem: Idem, ctx: Ctx
) -> Response:
    price = body.price.to_money(USD)
    request = idem.request(
        "activations.reserve",
        {
            "external_id": external_id,
            "price": price.amount,
            "window_seconds": body.window_seconds,
            "description": body.description,
        },
    )

    def work(conn: Connection, claimed: Request) -> ActivationOut:
        account = customer_for(conn, caller, external_id)
        activation = activations.reserve(
            conn,
            account,
            price=price,
            window=timedelta(seconds=body.window_seconds),
            description=body.description,
            now=ctx.clock.now(conn),
            request=claimed,
            actor=caller.actor,
        )
        return ActivationOut.of(activation)

    return idem.respond(ctx, request, work, status=201)


@router.get(
    "/{external_id}/activations/{activation_id}",
    description="An activation; one past its window reads `expired`.",
    responses=problems_for("account_not_found", "activation_not_found"),
)
def get_activation(external_id: str, activation_id: str, caller: Reader, ctx: Ctx) -> ActivationOut:
    with ctx.database.transaction() as conn:
        account: CustomerAccount = customer_for(conn, caller, external_id)
        activation = activations.get(
            conn, account, _activation_id(activation_id), now=ctx.clock.now(conn)
        )
    return ActivationOut.of(activation)


@router.post(
    "/{external_id}/activations/{activation_id}/cancel",
    responses=problems_for(
        "account_not_found",
        "activation_not_found",
        "activation_expired",
        "activation_fulfilled",
        "activation_cancelled",
    ),
    response_model=ActivationOut,
)
def cancel_activation(
    external_id: str, activation_id: str, caller: Writer, idem: Idem, ctx: Ctx
) -> Response:
    """Refund at once; refused once fulfilled (final) or expired (refunded anyway)."""
    request = idem.request(
        "activations.cancel", {"external_id": external_id, "activation_id": activation_id}
    )

    def work(conn: Connection, claimed: Request) -> ActivationOut:
        account = customer_for(conn, caller, external_id)
        activation = activations.cancel(
            conn, account, _activation_id(activation_id), now=ctx.clock.now(conn), request=claimed
        )
        return ActivationOut.of(activation)

    return idem.respond(ctx, request, work)


@router.post(
    "/{external_id}/activations/{activation_id}/fulfil",
    responses=problems_for(
        "account_not_found",
        "activation_not_found",
        "activation_expired",
        "activation_fulfilled",
        "activation_cancelled",
    ),
    response_model=ActivationOut,
)
def fulfil_activation(
    external_id: str, activation_id: str, caller: Writer, idem: Idem, ctx: Ctx
) -> Response:
    """Charge the price; final. Refused after the window ends (and the price returned)."""
    request = idem.request(
        "activations.fulfil", {"external_id": external_id, "activation_id": activation_id}
    )

    def work(conn: Connection, claimed: Request) -> ActivationOut:
        account = customer_for(conn, caller, external_id)
        activation = activations.fulfil(
            conn,
            account,
            _activation_id(activation_id),
            now=ctx.clock.now(conn),
            request=claimed,
            actor=caller.actor,
        )
        return ActivationOut.of(activation)

    return idem.respond(ctx, request, work)
