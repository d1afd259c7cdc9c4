"""The app factory.

Every /v1 route needs a valid API key, health included. The OpenAPI document (/openapi.json)
and the docs UI (/docs, /redoc) are public: they describe the API and hold no data, and client
generators can fetch them without a key.

Routes are plain `def` functions (FastAPI runs them in its thread pool) because the database
layer is synchronous; each opens one `database.transaction()` and does nothing slow inside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from kassa.api import problems
from kassa.api.context import AppContext
from kassa.api.routes import (
    account_states,
    accounts,
    activations,
    admin,
    admin_payouts,
    deposits,
    health,
    holds,
    payouts,
    rates,
    usage,
)
from kassa.api.schemas import Problem
from kassa.clock import Clock, DatabaseClock
from kassa.config import Settings
from kassa.db import Database
from kassa.deposits.runtime import derivers
from kassa.payouts.requests import Payouts
from kassa.pricing.service import PricingService

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (401, "No API key, or an unknown or revoked one"),
        (403, "The API key lacks the scope"),
        (422, "Invalid request content"),
    )
}


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
    pricing: PricingService | None = None,
) -> FastAPI:
    """Build the API. A database passed in stays the caller's to dispose; one built here from
    `settings` is disposed when the app shuts down."""
    owned = database is None
    db = database or Database.from_url(settings.db_url, pool_size=settings.db_pool_size)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            db.dispose()

    app = FastAPI(
        title="Kassa",
        summary="Self-hosted crypto payment gateway: prepaid USD balances, holds, ledger",
        version="0.1.0",
        lifespan=lifespan,
        responses=_PROBLEMS,
    )
    the_clock = clock or DatabaseClock()
    the_pricing = pricing or PricingService(db, the_clock, settings.pricing)
    app.state.kassa = AppContext(
        database=db,
        clock=the_clock,
        pricing=the_pricing,
        derivers=derivers(settings.chains),
        payouts=Payouts(
            database=db,
            clock=the_clock,
            pricing=the_pricing,
            policy=settings.policy.load(),
            settings=settings.payouts,
            chains=settings.chains,
        ),
    )
    problems.install(app)
    for module in (
        health,
        accounts,
        holds,
        admin,
        rates,
        deposits,
        usage,
        activations,
        account_states,
        payouts,
        admin_payouts,
    ):
        app.include_router(module.router)
    return app
