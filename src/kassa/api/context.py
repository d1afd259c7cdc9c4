"""What every route needs: the database, the clock and the pricing service, fixed when the app
is built."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from kassa.chains.network import Chain
from kassa.clock import Clock
from kassa.db import Database
from kassa.deposits.derive import HdDeriver
from kassa.payouts.requests import Payouts
from kassa.pricing.service import PricingService
from kassa.webhooks.settings import WebhookSettings


@dataclass(frozen=True, slots=True)
class AppContext:
    database: Database
    clock: Clock
    pricing: PricingService
    derivers: Mapping[Chain, HdDeriver]
    """Deposit-address derivers of the enabled chains (watch-only public keys)."""
    payouts: Payouts
    """Refund and withdrawal requests under the configured policy."""
    webhooks: WebhookSettings
    """``[webhooks]`` as deliveries use them (the devnet's loopback included)."""


def context_of(request: Request) -> AppContext:
    """The app's context, for code outside a dependency (an exception handler)."""
    context = request.app.state.kassa
    if not isinstance(context, AppContext):
        raise TypeError("create_app sets app.state.kassa to an AppContext")
    return context


async def app_context(request: Request) -> AppContext:
    """``async``, so FastAPI calls it on the event loop (a plain ``def`` would be a thread
    hop)."""
    return context_of(request)


Ctx = Annotated[AppContext, Depends(app_context)]
