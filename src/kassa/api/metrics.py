"""Prometheus metrics at ``GET /metrics`` (see docs/operations.md for every series).

Three parts, all on one registry per app (so two apps in one process never share series):

- `RequestMetrics`, an ASGI middleware outside everything else, counts requests and times them
  per method, route template (``/v1/payouts/{request_id}``, never the raw path, so ids never
  become labels) and status. Children are cached per label triple: a request costs a dict
  lookup, one counter increment and one histogram observation.
- `StateCollector` reads the gateway's state from the database when Prometheus scrapes: one
  short read-only transaction with grouped queries (deposits, payouts, review queue, watchers,
  rates, ledger, webhooks, reconciliation breaks), plus the engine's connection pool.
- `install` adds the ``/metrics`` route. It is outside ``/v1/``, so neither the API-key check
  of `kassa.api.guard.RequestGuard` nor the idempotency layer sees it; with ``[metrics] token``
  set it wants ``Authorization: Bearer <token>`` instead.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kassa.api import problems
from kassa.api.idempotency import REPLAYED_HEADER
from kassa.api.node_metrics import chain_node_metrics
from kassa.apikeys.errors import Unauthenticated
from kassa.clock import Clock
from kassa.db import Database
from kassa.deposits.tables import deposit, watcher_checkpoint
from kassa.ledger.idempotency import OK
from kassa.ledger.model import AccountKind
from kassa.ledger.tables import idempotency_record, ledger_account, ledger_transaction
from kassa.money import asset
from kassa.payouts.model import OPEN, RequestStatus
from kassa.payouts.tables import payout_request
from kassa.pricing.tables import rate_sample
from kassa.reports.reconciliation.model import BreakStatus
from kassa.reports.reconciliation.tables import reconciliation_break
from kassa.telemetry import metrics as loops
from kassa.webhooks.deliveries import DeliveryStatus
from kassa.webhooks.tables import webhook_delivery

__all__ = ["RequestMetrics", "StateCollector", "install"]

UNROUTED = "unrouted"
"""The route label of a request no route matched, or refused before routing (401, 413)."""

_OPEN_STATUSES = tuple(sorted(s.value for s in OPEN))
_REPLAYED = REPLAYED_HEADER.lower().encode()


class RequestMetrics:
    """ASGI middleware: ``kassa_http_requests_total`` and ``kassa_http_request_duration_seconds``
    per method, route template and status."""

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry) -> None:
        self.app = app
        labels = ("method", "route", "status")
        self.requests = Counter(
            "kassa_http_requests",
            "HTTP requests answered, by method, route template and status code",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            "kassa_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route and status",
            labels,
            registry=registry,
        )
        self.replays = Counter(
            "kassa_idempotent_replays",
            "Requests answered with a stored answer (Idempotent-Replayed: true), by route",
            ("route",),
            registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        replayed = False
        post = scope["method"] == "POST"

        async def send_status(message: Message) -> None:
            nonlocal status, replayed
            if message["type"] == "http.response.start":
                status = message["status"]
                # Only a POST can be replayed: other requests skip the header scan.
                if post:
                    replayed = (_REPLAYED, b"true") in message.get("headers", ())
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or UNROUTED
            key = (scope["method"], path, status)
            children = self._children.get(key)
            if children is None:
                labels = (key[0], key[1], str(status))
                children = (self.requests.labels(*labels), self.latency.labels(*labels))
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
            if replayed:
                self.replays.labels(path).inc()


class _LoopCollector(Collector):
    """This process's `kassa.telemetry.metrics` series (none unless it runs the loops)."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        return loops.REGISTRY.collect()


class StateCollector(Collector):
    """The gateway's state, read from the database at each scrape."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock

    def describe(self) -> list[Metric]:
        # Described as nothing, so registering it does not run the queries.
        return []

    def collect(self) -> Iterator[Metric]:
        with self.database.read_only() as conn:
            yield from _state(conn, self.clock.now(conn))
            yield from chain_node_metrics(conn)
            # While the scrape holds its own connection, which the figures include.
            yield from self._pool()

    def _pool(self) -> Iterable[Metric]:
        pool = self.database.engine.pool
        checked_out = getattr(pool, "checkedout", None)
        size = getattr(pool, "size", None)
        if callable(checked_out):
            gauge = GaugeMetricFamily(
                "kassa_db_pool_checked_out", "Database connections in use by this process"
            )
            gauge.add_metric([], float(checked_out()))
            yield gauge
        if callable(size):
            gauge = GaugeMetricFamily(
                "kassa_db_pool_size", "Connections the pool keeps (overflow comes on top)"
            )
            gauge.add_metric([], float(size()))
            yield gauge


def _age(now: datetime, then: datetime | None) -> float:
    return 0.0 if then is None else max((now - then).total_seconds(), 0.0)


def _state(conn: Connection, now: datetime) -> Iterator[Metric]:
    # Deposits by chain, asset and status.
    deposits = GaugeMetricFamily(
        "kassa_deposits", "Deposits by chain, asset and status", labels=("chain", "asset", "status")
    )
    for row in conn.execute(
        select(deposit.c.chain, deposit.c.asset, deposit.c.status, func.count()).group_by(
            deposit.c.chain, deposit.c.asset, deposit.c.status
        )
    ):
        deposits.add_metric([row[0], row[1], row[2]], float(row[3]))
    yield deposits

    # Payout requests by kind and status; the oldest's age for the open states.
    payouts = GaugeMetricFamily(
        "kassa_payout_requests", "Payout requests by kind and status", labels=("kind", "status")
    )
    oldest = GaugeMetricFamily(
        "kassa_payout_oldest_age_seconds",
        "Seconds since the oldest open payout request in each status was made",
        labels=("kind", "status"),
    )
    review = GaugeMetricFamily("kassa_review_queue", "Payout requests waiting for review")
    review_oldest = GaugeMetricFamily(
        "kassa_review_queue_oldest_age_seconds",
        "Seconds the oldest request in the review queue has waited (0 when it is empty)",
    )
    in_review, review_since = 0, None
    for row in conn.execute(
        select(
            payout_request.c.kind,
            payout_request.c.status,
            func.count(),
            # Made, not last updated: a payout that waits round after round keeps being touched.
            func.min(payout_request.c.created_at),
        ).group_by(payout_request.c.kind, payout_request.c.status)
    ):
        kind, status, count, since = row[0], row[1], int(row[2]), row[3]
        payouts.add_metric([kind, status], float(count))
        if status in _OPEN_STATUSES:
            oldest.add_metric([kind, status], _age(now, since))
        if status == RequestStatus.PENDING_REVIEW:
            in_review += count
            if since is not None and (review_since is None or since < review_since):
                review_since = since
    review.add_metric([], float(in_review))
    review_oldest.add_metric([], _age(now, review_since))
    yield from (payouts, oldest, review, review_oldest)

    # Chain watchers.
    scanned = GaugeMetricFamily(
        "kassa_watcher_scanned_height", "Last block the watcher processed", labels=("chain",)
    )
    head = GaugeMetricFamily(
        "kassa_watcher_head_height", "The node's tip at the watcher's last tick", labels=("chain",)
    )
    final = GaugeMetricFamily(
        "kassa_watcher_final_height",
        "The node's final block at the watcher's last tick",
        labels=("chain",),
    )
    lag = GaugeMetricFamily(
        "kassa_watcher_lag_blocks", "Head height minus scanned height", labels=("chain",)
    )
    tick_age = GaugeMetricFamily(
        "kassa_watcher_last_tick_age_seconds",
        "Seconds since the watcher's last tick",
        labels=("chain",),
    )
    failing = GaugeMetricFamily(
        "kassa_watcher_failing",
        "1 when the watcher's last tick failed (its error is in GET /v1/health)",
        labels=("chain",),
    )
    for w in conn.execute(select(watcher_checkpoint)):
        chain = [w.chain]
        scanned.add_metric(chain, float(w.height))
        if w.head_height is not None:
            head.add_metric(chain, float(w.head_height))
            lag.add_metric(chain, float(max(int(w.head_height) - int(w.height), 0)))
        if w.final_height is not None:
            final.add_metric(chain, float(w.final_height))
        if w.last_tick_at is not None:
            tick_age.add_metric(chain, _age(now, w.last_tick_at))
        failing.add_metric(
            chain,
            1.0
            if w.last_error_at is not None
            and (w.last_tick_at is None or w.last_error_at >= w.last_tick_at)
            else 0.0,
        )
    yield from (scanned, head, final, lag, tick_age, failing)

    # Exchange rates: the latest live sample's age per symbol.
    rate_age = GaugeMetricFamily(
        "kassa_rate_age_seconds",
        "Seconds since the latest live rate sample of each symbol",
        labels=("symbol",),
    )
    for row in conn.execute(
        select(rate_sample.c.symbol, func.max(rate_sample.c.sampled_at))
        .where(rate_sample.c.kind == "live")
        .group_by(rate_sample.c.symbol)
    ):
        rate_age.add_metric([row[0]], _age(now, row[1]))
    yield rate_age

    # Ledger transactions by kind (a counter: transactions are never deleted).
    ledger = CounterMetricFamily(
        "kassa_ledger_transactions", "Ledger transactions posted, by kind", labels=("kind",)
    )
    for row in conn.execute(
        select(ledger_transaction.c.kind, func.count()).group_by(ledger_transaction.c.kind)
    ):
        ledger.add_metric([row[0]], float(row[1]))
    yield ledger

    # The ledger's wallet accounts (deposit addresses and hot wallets per chain), whole units.
    wallets = GaugeMetricFamily(
        "kassa_wallet_book_balance",
        "What the ledger says a house wallet holds (posted), whole units of its asset",
        labels=("account", "asset"),
    )
    for row in conn.execute(
        select(
            ledger_account.c.code,
            ledger_account.c.asset,
            ledger_account.c.debits_posted,
            ledger_account.c.credits_posted,
        ).where(ledger_account.c.kind == AccountKind.WALLET.value)
    ):
        minor = int(row.debits_posted) - int(row.credits_posted)
        wallets.add_metric([row.code, row.asset], minor / 10 ** asset(row.asset).decimals)
    yield wallets

    # Refusals stored under idempotency keys, by operation and problem code.
    refusals = GaugeMetricFamily(
        "kassa_refusals",
        "Refusals recorded for keyed requests (insufficient funds, policy, …), by operation "
        "and code",
        labels=("operation", "code"),
    )
    for row in conn.execute(
        select(idempotency_record.c.operation, idempotency_record.c.outcome, func.count())
        .where(idempotency_record.c.outcome.is_not(None), idempotency_record.c.outcome != OK)
        .group_by(idempotency_record.c.operation, idempotency_record.c.outcome)
    ):
        refusals.add_metric([row[0], row[1]], float(row[2]))
    yield refusals

    # Webhook deliveries.
    deliveries = GaugeMetricFamily(
        "kassa_webhook_deliveries",
        "Webhook deliveries by status (pending is the backlog)",
        labels=("status",),
    )
    webhook_oldest = GaugeMetricFamily(
        "kassa_webhook_oldest_pending_age_seconds",
        "Seconds since the oldest pending webhook delivery was created (0 when none)",
    )
    counts = {status.value: 0 for status in DeliveryStatus}
    pending_since = None
    for row in conn.execute(
        select(
            webhook_delivery.c.status, func.count(), func.min(webhook_delivery.c.created_at)
        ).group_by(webhook_delivery.c.status)
    ):
        counts[row[0]] = int(row[1])
        if row[0] == DeliveryStatus.PENDING:
            pending_since = row[2]
    for status, count in counts.items():
        deliveries.add_metric([status], float(count))
    webhook_oldest.add_metric([], _age(now, pending_since))
    yield from (deliveries, webhook_oldest)

    # Open reconciliation breaks.
    breaks = GaugeMetricFamily(
        "kassa_reconciliation_open_breaks",
        "Reconciliation breaks not resolved, by leg and class",
        labels=("leg", "class"),
    )
    for row in conn.execute(
        select(reconciliation_break.c.leg, reconciliation_break.c["class"], func.count())
        .where(reconciliation_break.c.status != BreakStatus.RESOLVED.value)
        .group_by(reconciliation_break.c.leg, reconciliation_break.c["class"])
    ):
        breaks.add_metric([row[0], row[1]], float(row[2]))
    yield breaks


def install(app: FastAPI, *, database: Database, clock: Clock, token: str | None) -> None:
    """Add the request middleware (call it after every other middleware, so it is outermost)
    and the ``/metrics`` route, on a registry of this app's own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(database, clock))
    # The background loops' series, when this process runs them too (`kassa up`).
    registry.register(_LoopCollector())
    app.add_middleware(RequestMetrics, registry=registry)
    expected = f"Bearer {token}".encode() if token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return problems.error_response(
                    request, Unauthenticated("send the metrics token as 'Authorization: Bearer …'")
                )
        # The collector's queries are synchronous: off the event loop.
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    # An API route (so requests to it carry their route template too), outside the OpenAPI
    # document: it is for Prometheus, not for API clients.
    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        include_in_schema=False,
        description="Prometheus exposition of the request and state metrics",
    )
