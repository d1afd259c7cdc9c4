"""Prometheus metrics at /metrics: state built through the real services (a deposit credited
by the watcher from the FakeChain, a withdrawal, webhook deliveries) and read back from a scrape,
request series labelled by route template, scrape authentication on and off, and the scrape's
read-only database unit."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError

from kassa.api import create_app
from kassa.apikeys import service as apikeys
from kassa.apikeys.tables import api_key
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.clock import ManualClock
from kassa.config import MetricsSettings, Settings
from kassa.db import Database
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa.webhooks import deliveries

if TYPE_CHECKING:
    from tests.api.conftest import Api

SENDER = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"
PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, **headers: str) -> Series:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(series: Series, name: str, **labels: str) -> float:
    return series[(name, tuple(sorted(labels.items())))]


def test_a_scrape_shows_deposits_payouts_watchers_rates_ledger_and_webhooks(api: Api) -> None:
    api.account("u1")
    hook = api.post("/v1/webhooks/endpoints", {"url": "https://hooks.example.com/m"})
    assert hook.status_code == 201, hook.text
    address = api.post("/v1/accounts/u1/deposit-addresses", {"chain": "btc"}).json()["address"]
    PricingService(
        api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal("50000")})
    ).refresh([Symbol.BTC])
    chain = FakeChain(Chain.BTC, api.clock.now() - timedelta(minutes=1), final_depth=1)
    chain.mine(
        [
            ChainTransfer(
                Chain.BTC, "BTC", "cd" * 32, 0, address, 100_000, SENDER, SenderKind.KNOWN, True
            )
        ],
        seconds=30,
    )
    pricing = PricingService(api.db, api.clock, PricingSettings(history_tolerance_seconds=3600))
    Watcher(api.db, api.clock, chain, pricing, WatcherConfig(Chain.BTC)).tick()
    assert api.available("u1") == "50.00"  # 0.001 BTC at 50 000
    made = api.post(
        "/v1/withdrawals",
        {"external_id": "u1", "asset": "BTC", "address": PAYEE, "amount": api.usd("25")},
    )
    assert made.status_code == 201, made.text
    status = made.json()["status"]
    small = {"external_id": "u1", "asset": "BTC", "address": PAYEE, "amount": api.usd("10")}
    refused = api.post("/v1/withdrawals", small, key="small")
    code = refused.json()["code"]
    assert refused.status_code == 409, refused.text
    again = api.post("/v1/withdrawals", small, key="small")
    assert again.headers["Idempotent-Replayed"] == "true"
    with api.db.transaction() as conn:
        events = deliveries.dispatch(conn, now=api.clock.now(), limit=100)
    assert events >= 2  # deposit.credited, payout.requested …
    for _ in range(3):
        assert api.get("/v1/accounts/u1/deposits").status_code == 200
    assert api.get("/v1/accounts/nobody/deposits").status_code == 404
    api.clock.advance(timedelta(seconds=90))

    series = scrape(api.client)  # no key: /metrics is open by default

    assert value(series, "kassa_deposits", chain="btc", asset="BTC", status="credited") == 1
    assert value(series, "kassa_payout_requests", kind="withdrawal", status=status) == 1
    assert value(series, "kassa_payout_oldest_age_seconds", kind="withdrawal", status=status) == 90
    in_review = 1 if status == "pending_review" else 0
    assert value(series, "kassa_review_queue") == in_review
    assert value(series, "kassa_review_queue_oldest_age_seconds") == 90 * in_review
    assert value(series, "kassa_watcher_scanned_height", chain="btc") == 1
    assert value(series, "kassa_watcher_head_height", chain="btc") == 1
    assert value(series, "kassa_watcher_final_height", chain="btc") == 1
    assert value(series, "kassa_watcher_lag_blocks", chain="btc") == 0
    assert value(series, "kassa_watcher_last_tick_age_seconds", chain="btc") == 90
    assert value(series, "kassa_watcher_failing", chain="btc") == 0
    assert value(series, "kassa_rate_age_seconds", symbol="BTC") == 90
    ledger = {
        dict(labels)["kind"]: count
        for (name, labels), count in series.items()
        if name == "kassa_ledger_transactions_total"
    }
    assert ledger == {"deposit": 1}, ledger  # the withdrawal holds, it posts nothing yet
    assert code == "withdrawal_refused"
    refusals = {
        labels: count for (name, labels), count in series.items() if name == "kassa_refusals"
    }
    assert refusals == {(("code", code), ("operation", "api.withdrawals.create")): 1}, refusals
    assert value(series, "kassa_idempotent_replays_total", route="/v1/withdrawals") == 1
    pending = value(series, "kassa_webhook_deliveries", status="pending")
    assert pending == events
    assert value(series, "kassa_webhook_deliveries", status="failed") == 0
    assert value(series, "kassa_webhook_oldest_pending_age_seconds") == 90
    assert not [name for name, _ in series if name == "kassa_reconciliation_open_breaks"]
    assert value(series, "kassa_db_pool_checked_out") >= 1  # the scrape's own connection

    route = "/v1/accounts/{external_id}/deposits"
    requests = "kassa_http_requests_total"
    assert value(series, requests, method="GET", route=route, status="200") == 3
    assert value(series, requests, method="GET", route=route, status="404") == 1
    count = "kassa_http_request_duration_seconds_count"
    assert value(series, count, method="GET", route=route, status="200") == 3
    routes = {dict(labels)["route"] for name, labels in series if name == requests}
    assert not any("u1" in r or "nobody" in r for r in routes), routes  # templates, no ids
    assert "/v1/withdrawals" in routes and "/metrics" not in routes  # not scraped yet

    rescrape = scrape(api.client)
    assert value(rescrape, requests, method="GET", route="/metrics", status="200") == 1


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_scrape_token_and_switch(db: Database, clock: ManualClock) -> None:
    token = "metrics-token-0123456789"  # noqa: S105 - a test value
    settings = Settings(metrics=MetricsSettings(token=token))
    with TestClient(create_app(settings, database=db, clock=clock)) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
        assert wrong.status_code == 401
        assert wrong.headers["content-type"] == "application/problem+json"
        assert wrong.json()["code"] == "unauthenticated"
        series = scrape(client, Authorization=f"Bearer {token}")
        assert value(series, "kassa_review_queue") == 0
        # The refused scrapes are counted, under the route template.
        assert (
            value(series, "kassa_http_requests_total", method="GET", route="/metrics", status="401")
            == 2
        )
    off = Settings(metrics=MetricsSettings(enabled=False))
    with TestClient(create_app(off, database=db, clock=clock)) as client:
        assert client.get("/metrics").status_code == 404


def test_the_scrape_unit_reads_without_the_write_lock_and_cannot_write(
    db: Database, clock: ManualClock
) -> None:
    with db.read_only() as reader:
        assert reader.execute(select(func.count()).select_from(api_key)).scalar_one() == 0
        # On SQLite a BEGIN IMMEDIATE here would hold the write lock and this would time out.
        with db.transaction() as writer:
            apikeys.create_key(
                writer, name="w", scopes=["admin"], customer_account_id=None, now=clock.now()
            )
        # The reader keeps its snapshot.
        assert reader.execute(select(func.count()).select_from(api_key)).scalar_one() == 0
    if db.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="read-only"), db.read_only() as conn:
            conn.execute(delete(api_key))
