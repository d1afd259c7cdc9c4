"""The app factory.

Every /v1 route needs a valid API key, health included; `kassa.api.guard.RequestGuard` checks it
before any body is read, and bounds the body's size and nesting. The OpenAPI document
(/openapi.json), the docs UI (/docs, /redoc) and the load balancers' probes (/healthz, /readyz)
are public: they hold no data, and client generators and probes fetch them without a key. So is
the Prometheus endpoint /metrics unless ``[metrics] token`` is set (`kassa.api.metrics`). The
document is completed by `kassa.api.openapi` (problem responses per route, the required
Idempotency-Key); the docs pages and their assets are served from this process
(`kassa.api.docs`), never from a CDN.

Routes are plain `def` functions (FastAPI runs them in its thread pool) because the database
layer is synchronous; each opens one `database.transaction()` and does nothing slow inside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from kassa.api import (
    console,
    docs,
    event_schemas,
    metrics,
    openapi,
    problems,
    route_index,
    threads,
)
from kassa.api.context import AppContext
from kassa.api.guard import RequestGuard, pin_recursion_limit
from kassa.api.request_id import RequestId
from kassa.api.routes import (
    account_states,
    accounts,
    activations,
    admin,
    admin_payouts,
    deposits,
    disputes,
    health,
    holds,
    payouts,
    rates,
    reconciliation,
    reports,
    usage,
    webhooks,
)
from kassa.clock import Clock, DatabaseClock
from kassa.config import Settings
from kassa.db import Database
from kassa.pricing.service import PricingService
from kassa.wiring import Services


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
    pricing: PricingService | None = None,
    services: Services | None = None,
) -> FastAPI:
    """Build the API on `services` (`kassa.wiring`), or on parts built here from `settings` and
    whichever of database, clock and pricing are given. A database passed in (or the services')
    stays the caller's to dispose; one built here is disposed when the app shuts down."""
    built_here = services is None
    if services is None:
        owned = database is None
        db = database or Database.from_url(settings.db_url, pool_size=settings.db_pool_size)
        services = Services(settings, db, clock or DatabaseClock(), pricing=pricing)
    else:
        owned = False
        db = services.database
    parts = services

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        threads.set_database_threads(settings.database_threads)
        yield
        if built_here:
            parts.close()
        if owned:
            db.dispose()

    app = FastAPI(
        title="Kassa",
        summary="Self-hosted crypto payment gateway: prepaid USD balances, holds, ledger",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.kassa = AppContext(
        database=db,
        clock=services.clock,
        pricing=services.pricing,
        derivers=services.derivers,
        payouts=services.payouts,
        webhooks=services.settings.webhook_settings,
    )
    problems.install(app)
    # Its header middleware first: the guard and the metrics stay outside it.
    console.install(app)
    app.add_middleware(RequestGuard, database=db, max_body_bytes=settings.max_body_bytes)
    if settings.metrics.enabled:
        # After the guard, so it is outside it and counts the requests the guard refuses too.
        metrics.install(app, database=db, clock=services.clock, token=settings.metrics.token)
    # Outermost: the request's id is bound before anything else can log about it.
    app.add_middleware(RequestId)
    pin_recursion_limit()
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
        disputes,
        webhooks,
        reconciliation,
        reports,
    ):
        app.include_router(module.router)
    app.include_router(health.probes)
    event_schemas.install(app)
    docs.install(app)
    openapi.install(app)
    # Last: it indexes the routes added above.
    route_index.install(app)
    return app
