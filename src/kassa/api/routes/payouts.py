"""Refunds and withdrawals: quotes, requests, and their decision records.

``POST /v1/refunds/quote`` and ``POST /v1/withdrawals/quote`` answer what the policy decides
now at locked rates — allowed or refused, every rule with its reason, and the money (gross,
fees, network fee, net in USD and in coins, the rate) — and, when allowed, store it as a binding
quote (``quote_id``, ``expires_at``; issue 14). ``POST /v1/refunds`` and ``POST /v1/withdrawals``
(with the ``quote_id``, to commit exactly its figures, or without, for a fresh quote) decide
again and, when allowed, reserve the gross amount on the balance
and queue the payout (``pending_review`` or ``approved``, as the policy says). A refusal is
``409 refund_refused`` / ``withdrawal_refused`` with the decision in the problem body.
``GET`` returns a request with its decision record and history; ``…/cancel`` withdraws it before
the coins leave, and the funds return.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from kassa.api.auth import Caller, Reader, Writer, customer_for, sees
from kassa.api.context import AppContext, Ctx
from kassa.api.idempotency import Idem, Idempotency
from kassa.api.openapi import problems_for
from kassa.api.schemas import AmountIn, AmountOut, DecisionOut, ExternalId, PayoutEventOut
from kassa.ledger.idempotency import Request
from kassa.money import USD, Asset
from kassa.payouts import store
from kassa.payouts.errors import PayoutRequestNotFound
from kassa.payouts.model import RequestKind
from kassa.payouts.quotes import Quote
from kassa.payouts.requests import PayoutLocks, PayoutRequest, parse_payout_asset
from kassa.payouts.views import payout_view
from kassa.policy import Decision

router = APIRouter(prefix="/v1", tags=["refunds and withdrawals"])


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: ExternalId
    deposit_id: uuid.UUID = Field(description="The credited top-up to refund")


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: ExternalId
    amount: AmountIn = Field(description="Gross USD taken from the balance")
    asset: str = Field(examples=["USDT-TRC20", "BTC", "ETH"])
    address: str = Field(description="Where to pay; checked for the asset's chain and network")


class RefundCreateIn(RefundIn):
    quote_id: uuid.UUID | None = Field(
        default=None,
        description="A quote from POST /v1/refunds/quote whose figures the refund commits",
    )


class WithdrawalCreateIn(WithdrawalIn):
    quote_id: uuid.UUID | None = Field(
        default=None,
        description="A quote from POST /v1/withdrawals/quote whose figures it commits",
    )


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="cancelled by the customer", max_length=500)


class QuoteOut(BaseModel):
    allowed: bool
    summary: str = Field(description="One paragraph for a support agent")
    decision: DecisionOut
    quote_id: str | None = Field(
        description="Pass it as quote_id to commit exactly these figures (None when refused)"
    )
    expires_at: datetime | None = Field(description="The quote can be used until then")

    @classmethod
    def of(cls, decision: Decision, quote: Quote | None) -> QuoteOut:
        return cls(
            allowed=decision.allowed,
            summary=decision.summary(),
            decision=DecisionOut.model_validate(decision.as_record()),
            quote_id=None if quote is None else str(quote.id),
            expires_at=None if quote is None else quote.expires_at,
        )


class PayoutRequestOut(BaseModel):
    id: str
    kind: str
    status: str
    external_id: str
    deposit_id: str | None
    asset: str
    destination: str
    gross: AmountOut
    fees: AmountOut
    network_fee: AmountOut
    net: AmountOut
    net_native: AmountOut
    network_fee_native: AmountOut | None
    rate_lock_id: str
    quote_id: str | None = Field(description="The quote whose figures it committed")
    policy: str
    needs_review: bool
    review_due_at: datetime | None
    created_at: datetime
    decision: DecisionOut
    history: list[PayoutEventOut] = Field(
        description="Every change of status, and a re-pricing at approval, oldest first"
    )


def event_out(event: dict[str, Any]) -> PayoutEventOut:
    """One history entry; a ``repriced`` one carries its figures (``repricing``)."""
    return PayoutEventOut.model_validate({**event, "repricing": event.get("detail")})


def request_out(conn: Connection, item: PayoutRequest) -> PayoutRequestOut:
    """The request as its events carry it (`kassa.payouts.views`): one view for both."""
    return PayoutRequestOut.model_validate(payout_view(conn, item))


def _locks(
    ctx: AppContext, coin: Asset, quote_id: uuid.UUID | None, destination: str | None = None
) -> PayoutLocks:
    """The quote's locked rates (and fee) when the request names one, else fresh ones and the
    chain's fee now (a fresh quote)."""
    if quote_id is None:
        return ctx.payouts.lock_rates(coin, destination)
    return ctx.payouts.quote_locks(quote_id)


def _visible(
    conn: Connection, caller: Caller, request_id: uuid.UUID, kind: RequestKind
) -> PayoutRequest:
    """The request of `kind` the caller may see. A request of the other kind, or of another
    account, answers exactly as one that does not exist (never naming its owner)."""
    missing = PayoutRequestNotFound(f"no {kind.value} {request_id}")
    try:
        item = store.get(conn, request_id)
    except PayoutRequestNotFound:
        raise missing from None
    if item.kind is not kind or not sees(caller, item.customer_account_id):
        raise missing
    return item


@router.post(
    "/refunds/quote",
    description=(
        "What the policy decides now about refunding a top-up, at locked rates; when allowed, "
        "stored as a binding quote (id and expiry) that POST /v1/refunds may commit."
    ),
    responses=problems_for(
        "account_not_found", "topup_not_found", "topup_not_credited", "no_rate", "rail_unavailable"
    ),
)
def quote_refund(body: RefundIn, caller: Reader, ctx: Ctx) -> QuoteOut:
    """What the policy decides now for this refund, as a binding quote. No Idempotency-Key: a
    quote moves no money and commits nothing; asking again makes another offer."""
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, body.external_id)
    return QuoteOut.of(*ctx.payouts.quote_refund(account, body.deposit_id))


@router.post(
    "/refunds",
    description=(
        "Request a refund of a top-up: decided by the policy and, if "
        "allowed, its funds reserved and the payout queued."
    ),
    responses=problems_for(
        "account_not_found",
        "topup_not_found",
        "topup_not_credited",
        "no_rate",
        "rail_unavailable",
        "refund_refused",
        "quote_not_found",
        "quote_expired",
        "quote_already_used",
        "quote_mismatch",
        "insufficient_funds",
        "account_frozen",
        "payout_limit_exceeded",
    ),
    status_code=201,
    response_model=PayoutRequestOut,
)
def create_refund(body: RefundCreateIn, caller: Writer, idem: Idem, ctx: Ctx) -> Response:
    asked = {"external_id": body.external_id, "deposit_id": str(body.deposit_id)}
    if body.quote_id is not None:
        asked["quote_id"] = str(body.quote_id)
    request = idem.request("refunds.create", asked)
    replayed = idem.replay(ctx, request)
    if replayed is not None:
        return replayed
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, body.external_id)
        coin, sender = ctx.payouts.refund_route(conn, account, body.deposit_id)
    locks = _locks(ctx, coin, body.quote_id, sender)

    def work(conn: Connection, claimed: Request) -> PayoutRequestOut:
        created = ctx.payouts.create_refund(
            conn, account, body.deposit_id, locks, request=claimed, actor=caller.actor
        )
        return request_out(conn, created)

    return idem.respond(ctx, request, work, status=201)


@router.get(
    "/refunds/{request_id}",
    description="A refund request with its decision and history.",
    responses=problems_for("payout_request_not_found", "account_not_found"),
)
def get_refund(request_id: uuid.UUID, caller: Reader, ctx: Ctx) -> PayoutRequestOut:
    with ctx.database.transaction() as conn:
        return request_out(conn, _visible(conn, caller, request_id, RequestKind.REFUND))


@router.post(
    "/refunds/{request_id}/cancel",
    description="Cancel a refund before its coins leave; the funds return.",
    responses=problems_for(
        "payout_request_not_found", "payout_request_not_pending", "account_not_found"
    ),
    response_model=PayoutRequestOut,
)
def cancel_refund(
    request_id: uuid.UUID, body: CancelIn, caller: Writer, idem: Idem, ctx: Ctx
) -> Response:
    return _cancel(ctx, idem, caller, request_id, RequestKind.REFUND, body.reason)


@router.post(
    "/withdrawals/quote",
    description=(
        "What the policy decides now about a withdrawal, at locked rates; when allowed, stored "
        "as a binding quote (id and expiry) that POST /v1/withdrawals may commit."
    ),
    responses=problems_for(
        "account_not_found",
        "invalid_address",
        "asset_not_payable",
        "destination_is_deposit_address",
        "chain_not_enabled",
        "no_rate",
        "rail_unavailable",
        "invalid_amount",
        "amount_out_of_range",
        "asset_mismatch",
        "unknown_asset",
    ),
)
def quote_withdrawal(body: WithdrawalIn, caller: Reader, ctx: Ctx) -> QuoteOut:
    """What the policy decides now for this withdrawal, as a binding quote (no
    Idempotency-Key, as for refund quotes)."""
    amount = body.amount.to_money(USD)
    coin = parse_payout_asset(body.asset)
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, body.external_id)
    return QuoteOut.of(*ctx.payouts.quote_withdrawal(account, amount, coin, body.address))


@router.post(
    "/withdrawals",
    description=(
        "Request a withdrawal to an address: decided by the policy "
        "and, if allowed, its funds reserved and the payout queued."
    ),
    responses=problems_for(
        "account_not_found",
        "invalid_address",
        "asset_not_payable",
        "destination_is_deposit_address",
        "chain_not_enabled",
        "no_rate",
        "rail_unavailable",
        "withdrawal_refused",
        "quote_not_found",
        "quote_expired",
        "quote_already_used",
        "quote_mismatch",
        "insufficient_funds",
        "account_frozen",
        "payout_limit_exceeded",
        "invalid_amount",
        "amount_out_of_range",
        "asset_mismatch",
        "unknown_asset",
    ),
    status_code=201,
    response_model=PayoutRequestOut,
)
def create_withdrawal(body: WithdrawalCreateIn, caller: Writer, idem: Idem, ctx: Ctx) -> Response:
    amount = body.amount.to_money(USD)
    coin = parse_payout_asset(body.asset)
    asked: dict[str, object] = {
        "external_id": body.external_id,
        "amount": amount.amount,
        "asset": coin.code.value,
        "address": body.address,
    }
    if body.quote_id is not None:
        asked["quote_id"] = str(body.quote_id)
    request = idem.request("withdrawals.create", asked)
    replayed = idem.replay(ctx, request)
    if replayed is not None:
        return replayed
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, body.external_id)
    locks = _locks(ctx, coin, body.quote_id, body.address)

    def work(conn: Connection, claimed: Request) -> PayoutRequestOut:
        created = ctx.payouts.create_withdrawal(
            conn, account, amount, coin, body.address, locks, request=claimed, actor=caller.actor
        )
        return request_out(conn, created)

    return idem.respond(ctx, request, work, status=201)


@router.get(
    "/withdrawals/{request_id}",
    description="A withdrawal request with its decision and history.",
    responses=problems_for("payout_request_not_found", "account_not_found"),
)
def get_withdrawal(request_id: uuid.UUID, caller: Reader, ctx: Ctx) -> PayoutRequestOut:
    with ctx.database.transaction() as conn:
        return request_out(conn, _visible(conn, caller, request_id, RequestKind.WITHDRAWAL))


@router.post(
    "/withdrawals/{request_id}/cancel",
    description="Cancel a withdrawal before its coins leave; the funds return.",
    responses=problems_for(
        "payout_request_not_found", "payout_request_not_pending", "account_not_found"
    ),
    response_model=PayoutRequestOut,
)
def cancel_withdrawal(
    request_id: uuid.UUID, body: CancelIn, caller: Writer, idem: Idem, ctx: Ctx
) -> Response:
    return _cancel(ctx, idem, caller, request_id, RequestKind.WITHDRAWAL, body.reason)


def _cancel(
    ctx: AppContext,
    idem: Idempotency,
    caller: Caller,
    request_id: uuid.UUID,
    kind: RequestKind,
    reason: str,
) -> Response:
    request = idem.request(
        f"{kind.value}s.cancel", {"request_id": str(request_id), "reason": reason}
    )

    def work(conn: Connection, _claimed: Request) -> PayoutRequestOut:
        _visible(conn, caller, request_id, kind)
        cancelled = ctx.payouts.cancel(conn, request_id, actor=caller.actor, reason=reason)
        return request_out(conn, cancelled)

    return idem.respond(ctx, request, work)


class PayoutListOut(BaseModel):
    requests: list[PayoutRequestOut]


@router.get(
    "/accounts/{external_id}/payouts",
    description="The account's refund and withdrawal requests.",
    responses=problems_for("account_not_found"),
)
def list_payouts(external_id: str, caller: Reader, ctx: Ctx) -> PayoutListOut:
    with ctx.database.transaction() as conn:
        account = customer_for(conn, caller, external_id)
        items = store.for_account(conn, account.id)
        return PayoutListOut(requests=[request_out(conn, item) for item in items])
