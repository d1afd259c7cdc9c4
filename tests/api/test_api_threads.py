"""Database routes run on a few threads of their own (`kassa.api.threads`): at most
``database_threads`` route bodies at once, every request still answered; routes that call out of
the process stay on the shared pool; the setting reaches the running app."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from kassa.api import create_app, threads
from kassa.api.threads import DatabaseRoute
from kassa.clock import ManualClock
from kassa.collector import GC_THRESHOLDS, tune_gc
from kassa.config import Settings
from kassa.db import Database


class Gauge:
    """How many route bodies run at once, at most."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.threads: set[int] = set()

    def visit(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.threads.add(threading.get_ident())
        time.sleep(0.05)
        with self._lock:
            self.now -= 1


def _app(database_gauge: Gauge, shared_gauge: Gauge) -> FastAPI:
    app = FastAPI()
    database = APIRouter(route_class=DatabaseRoute)
    shared = APIRouter()

    @database.get("/database/{n}")
    def database_route(n: int) -> dict[str, int]:
        database_gauge.visit()
        return {"n": n}

    @shared.get("/shared/{n}")
    def shared_route(n: int) -> dict[str, int]:
        shared_gauge.visit()
        return {"n": n}

    app.include_router(database)
    app.include_router(shared)
    return app


def _fire(app: FastAPI, path: str, count: int, size: int) -> list[httpx.Response]:
    answers: list[httpx.Response] = []

    async def main() -> None:
        threads.set_database_threads(size)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://kassa") as client:

            async def one(n: int) -> None:
                answers.append(await client.get(f"{path}/{n}"))

            async with anyio.create_task_group() as group:
                for n in range(count):
                    group.start_soon(one, n)

    anyio.run(main)
    return answers


def test_at_most_database_threads_route_bodies_run_at_once_and_all_are_answered() -> None:
    database, shared = Gauge(), Gauge()
    answers = _fire(_app(database, shared), "/database", count=12, size=3)
    assert sorted(a.json()["n"] for a in answers) == list(range(12))
    assert all(a.status_code == 200 for a in answers)
    assert database.most == 3
    assert len(database.threads) <= 3 + 1  # anyio may start a fresh thread for a freed token


def test_routes_outside_the_database_class_keep_the_shared_pool() -> None:
    database, shared = Gauge(), Gauge()
    answers = _fire(_app(database, shared), "/shared", count=12, size=2)
    assert len(answers) == 12
    # Not held to the two database threads: a slow outside call never takes a database turn.
    assert shared.most > 2


def test_a_database_route_keeps_its_parameters_and_its_documentation() -> None:
    database, shared = Gauge(), Gauge()
    app = _app(database, shared)
    with TestClient(app) as client:
        assert client.get("/database/7").json() == {"n": 7}
        assert client.get("/database/seven").status_code == 422
        parameters = client.get("/openapi.json").json()["paths"]["/database/{n}"]["get"]
    assert parameters["parameters"][0]["schema"]["type"] == "integer"


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database.from_url(f"sqlite:///{tmp_path / 'kassa.sqlite3'}")
    try:
        yield db
    finally:
        db.dispose()


def test_the_apps_database_only_routes_run_under_the_setting(database: Database) -> None:
    settings = Settings(database_threads=2)
    app = create_app(
        settings, database=database, clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    )
    routes = {
        (method, route.path): (getattr(route, "original_route", route), route.endpoint)
        for entry in app.routes
        # An included router lists its routes as FastAPI matches them, each naming the route
        # it was made from.
        for route in getattr(entry, "effective_candidates", lambda entry=entry: [entry])()
        if isinstance(getattr(route, "original_route", route), APIRoute)
        for method in route.methods
    }
    for database_route in (
        ("POST", "/v1/accounts/{external_id}/usage"),
        ("GET", "/v1/accounts/{external_id}/balance"),
        ("POST", "/v1/accounts/{external_id}/holds"),
        ("POST", "/v1/holds/{hold_id}/capture"),
        ("POST", "/v1/accounts/{external_id}/activations"),
    ):
        route, endpoint = routes[database_route]
        assert isinstance(route, DatabaseRoute), database_route
        # What FastAPI calls: the body on a database thread, awaited from the event loop.
        assert inspect.iscoroutinefunction(endpoint), database_route
    # Routes that call out of the process (rate sources, chain nodes) stay on the shared pool.
    for outside in (
        ("POST", "/v1/accounts/{external_id}/deposit-addresses"),
        ("GET", "/v1/rates"),
        ("POST", "/v1/refunds/quote"),
    ):
        route, endpoint = routes[outside]
        assert not isinstance(route, DatabaseRoute), outside
        assert not inspect.iscoroutinefunction(endpoint), outside
    with TestClient(app) as client:
        assert client.portal is not None
        limiter = client.portal.call(threads.database_limiter)
    assert limiter.total_tokens == 2


def test_serving_freezes_the_import_time_heap_and_collects_the_young_less_often() -> None:
    import gc

    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_freeze_count() > 10_000
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
