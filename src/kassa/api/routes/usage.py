"""Metered usage: `POST /v1/accounts/{id}/usage` charges a batch of priced events.

Each event carries the host's own event id, a USD amount and a description. The batch is one
journal entry. It is idempotent per event id: an event id charged before is skipped and reported
as `duplicate`; the same id with a different amount or description refuses the batch (409
`usage_event_conflict`). The batch is refused as a whole — nothing charged — when the available
balance cannot cover its new events (409 `insufficient_funds`), and when the account is
suspended, terminated or frozen (409 `account_suspended` / `account_terminated` /
`account_frozen`). At most 1 000 events per request.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from kassa.api.auth import Writer, sees
from kassa.api.context import Ctx
from kassa.api.idempotency import Idem, WithResource
from kassa.api.openapi import problems_for
from kassa.api.schemas import AmountIn, AmountOut, BalanceOut
from kassa.api.threads import DatabaseRoute
from kassa.ledger.accounts import get_balance
from kassa.ledger.idempotency import Request
from kassa.money import USD, MoneyError
from kassa.spending import usage
from kassa.spending.usage import UsageBatch, UsageEvent

router = APIRouter(prefix="/v1/accounts", tags=["usage"], route_class=DatabaseRoute)


class UsageEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(
        description="Your id of the event, 1-128 printable ASCII characters without spaces. "
        "Charged once: a retry reuses it",
        examples=["call-7f3a9c"],
    )
    amount: AmountIn = Field(description="Positive, in USD, at most 1 000 000")
    description: str = Field(examples=["GET /v2/search"], description="1-500 characters")


class UsageBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[UsageEventIn] = Field(
        description=f"1 to {usage.MAX_BATCH_EVENTS} events",
        json_schema_extra={"minItems": 1, "maxItems": usage.MAX_BATCH_EVENTS},
    )


class UsageEventOut(BaseModel):
    event_id: str
    status: Literal["charged", "duplicate"] = Field(
        description=("charged by this batch, or a duplicate of an event charged before (skipped)")
    )


class UsageBatchOut(BaseModel):
    batch_id: uuid.UUID
    transaction_id: uuid.UUID | None = Field(
        description="The journal entry charging the batch; null when nothing was new"
    )
    charged: AmountOut = Field(description="Sum of the events this batch charged")
    charged_events: int = Field(ge=0)
    duplicate_events: int = Field(ge=0)
    events: list[UsageEventOut] = Field(description="Every event of the request, in its order")
    last_usage_at: datetime | None = Field(description="When usage was last charged")
    balance: BalanceOut

    @classmethod
    def of(
        cls, batch: UsageBatch, last_usage_at: datetime | None, balance: BalanceOut
    ) -> UsageBatchOut:
        return cls(
            batch_id=batch.id,
            transaction_id=batch.transaction_id,
            charged=AmountOut.of(batch.charged),
            charged_events=batch.charged_events,
            duplicate_events=batch.duplicate_events,
            events=[UsageEventOut(event_id=i, status=s.value) for i, s in batch.events],
            last_usage_at=last_usage_at,
            balance=balance,
        )


def _events(body: UsageBatchIn) -> list[UsageEvent]:
    events = []
    for index, event in enumerate(body.events):
        try:
            amount = event.amount.to_money(USD)
        except MoneyError as error:
            # Same code, but say which event: a batch of 1 000 needs the index.
            raise type(error)(f"events[{index}].amount: {error}") from error
        events.append(UsageEvent(event.event_id, amount, event.description))
    return events


@router.post(
    "/{external_id}/usage",
    responses=problems_for(
        "account_not_found",
        "insufficient_funds",
        "account_frozen",
        "account_suspended",
        "account_terminated",
        "usage_event_conflict",
        "invalid_usage_batch",
        "invalid_usage_event",
        "invalid_amount",
        "amount_out_of_range",
        "asset_mismatch",
        "unknown_asset",
    ),
    response_model=UsageBatchOut,
)
def record_usage(
    external_id: str, body: UsageBatchIn, caller: Writer, idem: Idem, ctx: Ctx
) -> Response:
    """Charge a batch of usage events (see the module description). A retry of the same
    request with the same Idempotency-Key gets the first answer back; a retry under a new key
    is safe too: the events already charged come back as `duplicate`."""
    events = _events(body)
    usage.validate(events)
    request = idem.request(
        "usage.record",
        {
            "external_id": external_id,
            "events": [[e.event_id, e.amount.amount, e.description] for e in events],
        },
    )

    def work(conn: Connection, claimed: Request, now: datetime) -> WithResource:
        # One statement reads the account, its balance and the revenue account, and tells
        # whether a hold is due (the fence of `customer_for`, run only then).
        payer = usage.payer(conn, external_id, now=now, visible=lambda i: sees(caller, i))
        if claimed.claimed is None:
            # The key has an outcome stored by an older version, without its answer: the
            # batch stored under it is replayed (and the answer built from it stored now).
            batch = usage.record_usage(
                conn, payer.account, events, now=now, request=claimed, actor=caller.actor
            )
            balance = get_balance(conn, payer.account.ledger_account_id)
        else:
            # `respond_at` rolls the work back to its savepoint on an unrecorded refusal.
            batch = usage.charge(
                conn,
                payer,
                events,
                now=now,
                claimed=claimed.claimed,
                actor=caller.actor,
                rolled_back_by_caller=True,
            )
            balance = usage.balance_after(conn, payer, batch)
        last = batch.last_usage_at or usage.last_usage_at(conn, payer.account.id)
        return WithResource(UsageBatchOut.of(batch, last, BalanceOut.of(balance)), str(batch.id))

    return idem.respond_at(ctx, request, work)
