"""The event catalog as the OpenAPI 3.1 ``webhooks`` section.

One entry per event type (`kassa.events.catalog`): the POST a receiver gets, whose body is the
envelope every delivery carries (`kassa.events.outbox.envelope`) with ``data`` typed as the
subject kind's API response model — the same object its GET returns — or, for the operator's
events, the small objects below.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field, create_model
from starlette.routing import BaseRoute

from kassa.api.routes.activations import ActivationOut
from kassa.api.routes.deposits import DepositOut
from kassa.api.routes.disputes import DisputeOut
from kassa.api.routes.payouts import PayoutRequestOut
from kassa.api.schemas import AccountOut
from kassa.events.catalog import CATALOG, EventType


class EventSubject(BaseModel):
    kind: str = Field(
        description="deposit, refund, withdrawal, activation, account, dispute, "
        "watcher, rate, hot_wallet, webhook_endpoint, reconciliation or report"
    )
    id: str = Field(
        description="The object's id (a chain, a symbol or an asset for the operator's events)"
    )
    seq: int = Field(description="1, 2, 3, … per subject: the order of its events", ge=1)


class WatcherEventData(BaseModel):
    chain: str = Field(examples=["btc"])
    scanned_height: int = Field(description="The last block the watcher scanned")
    head_height: int = Field(description="The node's best block")
    lag: int = Field(description="Blocks behind the node")
    threshold: int = Field(description="`[chains.<chain>] lag_alert_blocks`")


class RateEventData(BaseModel):
    asset: str = Field(description="The priced symbol", examples=["BTC", "USDT"])
    source: str = Field(description="Which rates: live (the aggregated market)")
    sources: list[str] = Field(description="The sources behind the rate (empty when none)")
    bid: str | None = Field(description="USD per coin the house pays; null when unavailable")
    ask: str | None = Field(description="USD per coin the house charges; null when unavailable")
    reason: str


class HotWalletEventData(BaseModel):
    chain: str
    asset: str = Field(examples=["BTC", "USDT-TRC20"])
    address: str = Field(description="The hot wallet's address")
    balance: str = Field(description="Whole units, exact")
    threshold: str = Field(description="Whole units, exact")


class WebhookEndpointEventData(BaseModel):
    id: str = Field(description="The endpoint's id")
    url: str
    status: str = Field(examples=["disabled"])
    reason: str = Field(description="Why the sender disabled it")
    customer_account_id: str | None = Field(
        description="The one customer account it receives events of; null for all"
    )


class ReconciliationEventData(BaseModel):
    run_id: str = Field(description="The run (GET /v1/reports/reconciliation?run=…)")
    new: int = Field(description="Breaks first seen in this run")
    persisting: int = Field(description="Breaks seen before and again in this run")
    resolved: int = Field(description="Breaks no longer found")
    open: int = Field(description="new + persisting")
    coverage: str | None = Field(
        description="Assets ÷ customer liabilities in total, 4 decimals (null when nothing is owed)"
    )


class ReportEventData(BaseModel):
    report: str = Field(examples=["activity"])
    day: str = Field(description="The day reported (ISO date, in `time_zone`)")
    time_zone: str = Field(description="[reports] time_zone", examples=["UTC"])
    start: str = Field(description="The day's first instant (ISO 8601)")
    end: str = Field(description="The next day's first instant (ISO 8601)")
    csv: str = Field(description="File name in <data_dir>/reports")
    html: str = Field(description="File name in <data_dir>/reports")


DATA_MODEL: Mapping[str, type[BaseModel]] = {
    "deposit": DepositOut,
    "refund": PayoutRequestOut,
    "withdrawal": PayoutRequestOut,
    "activation": ActivationOut,
    "account": AccountOut,
    "dispute": DisputeOut,
    "watcher": WatcherEventData,
    "rate": RateEventData,
    "hot_wallet": HotWalletEventData,
    "webhook_endpoint": WebhookEndpointEventData,
    "reconciliation": ReconciliationEventData,
    "report": ReportEventData,
}
"""The schema of ``data`` per subject kind."""


class EventEnvelope(BaseModel):
    """What every delivery of an event carries (the signed body)."""

    id: str = Field(description="evt_…: the same on every attempt (deduplicate on it)")
    timestamp: datetime = Field(description="When the change happened")
    account_id: uuid.UUID | None = Field(
        description="The customer account the object belongs to; null for the operator's"
    )
    subject: EventSubject


def envelope_model(entry: EventType) -> type[BaseModel]:
    name = "".join(part.capitalize() for part in entry.type.replace("_", ".").split(".")) + "Event"
    literal: Any = Literal[entry.type]  # a type made at run time, one per event type
    model: type[BaseModel] = create_model(
        name,
        __base__=EventEnvelope,
        __doc__=entry.meaning,
        type=(literal, Field(description="The event type")),
        data=(DATA_MODEL[entry.subject_kind], Field(description="The object as its GET shows it")),
    )
    return model


def install(app: FastAPI) -> None:
    """Publish one webhook per event type in the app's OpenAPI document."""
    app.webhooks.routes.extend(_webhook_routes())


@functools.cache
def _webhook_routes() -> tuple[BaseRoute, ...]:
    """The webhook routes, built once per process: they only describe the catalog (nothing calls
    them), and building them (a pydantic model and a route per event type) took most of
    `create_app`'s time."""
    router = APIRouter()
    for entry in CATALOG.values():
        model = envelope_model(entry)

        def receive(body: Any) -> None:
            """A receiver's endpoint (never called: the document describes it)."""

        receive.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=model)]
        )
        router.add_api_route(
            entry.type,
            receive,
            methods=["POST"],
            summary=entry.type,
            description=f"{entry.meaning} Subject kind: `{entry.subject_kind}`.",
            operation_id=f"event_{entry.type.replace('.', '_')}",
            tags=["events"],
            status_code=200,
            responses={200: {"description": "Any 2xx acknowledges the delivery"}},
        )
    return tuple(router.routes)
