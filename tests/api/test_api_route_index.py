"""The route index (`kassa.api.route_index`) picks the route FastAPI's router would pick, for
every route of the app, and leaves 404, 405 and redirects to the router."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Match, Mount

from kassa.api import create_app
from kassa.api.route_index import RouteIndex
from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.db import Database

SAMPLE = {"int": "7", "uuid": str(uuid.uuid4()), "path": "a/b.css", "float": "1.5"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    path: Path = tmp_path_factory.mktemp("route-index") / "kassa.sqlite3"
    db = Database.from_url(f"sqlite:///{path}")
    try:
        yield create_app(
            Settings(), database=db, clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        )
    finally:
        db.dispose()


def _index(app: FastAPI) -> RouteIndex:
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex), "the app dispatches through the route index"
    return index


def _routed(routes: Sequence[BaseRoute], path: str, method: str) -> object:
    """The first entry that fully matches, as the router tries them (None: 404/405/redirect)."""
    scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
    for route in routes:
        match, _child = route.matches(dict(scope))
        if match == Match.FULL:
            return route
    return None


def _sample_paths(app: FastAPI) -> list[tuple[str, str]]:
    """A concrete path and method for every route of the app (and a wrong method, and the
    segment values that collide with the routes' own words)."""
    formats: set[tuple[str, str]] = set()
    routes: list[object] = []
    for entry in app.routes:
        # An included router lists its routes as FastAPI matches them.
        routes += getattr(entry, "effective_candidates", lambda entry=entry: [entry])()
    for route in routes:
        if isinstance(route, Mount):
            formats.add((route.path + "/{rest:path}", "GET"))
            continue
        path_format = getattr(route, "path_format", None)
        for method in getattr(route, "methods", None) or {"GET"}:
            if isinstance(path_format, str):
                formats.add((path_format, method))
    samples: list[tuple[str, str]] = []
    for path_format, method in sorted(formats):
        for value in ("x1", "usage", "balance", "accounts", "v1"):
            parts = []
            for segment in path_format.split("/"):
                if "{" in segment:
                    name = segment.strip("{}")
                    convertor = name.partition(":")[2]
                    segment = SAMPLE.get(convertor, value)
                parts.append(segment)
            path = "/".join(parts)
            samples += [(path, method), (path, "PATCH"), (path + "/", method)]
    return samples


def test_the_index_picks_the_route_the_router_picks(app: FastAPI) -> None:
    index = _index(app)
    samples = _sample_paths(app)
    assert len(samples) > 500
    for path, method in samples:
        expected = _routed(app.router.routes, path, method)
        assert _routed(index.candidates(path), path, method) is expected, (method, path)


def test_a_request_path_is_tried_against_one_or_two_entries(app: FastAPI) -> None:
    index = _index(app)
    assert len(app.router.routes) > 20
    assert len(index.candidates("/healthz")) == 1
    assert len(index.candidates("/v1/accounts/bench-user-1/usage")) == 1
    assert len(index.candidates("/v1/accounts/bench-user-1/balance")) == 1


def test_not_found_wrong_method_and_answers_go_through_as_before(app: FastAPI) -> None:
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        missing = client.get("/v1/no-such-thing")
        assert missing.status_code == 401  # the guard answers first under /v1/
        assert client.get("/no-such-thing").status_code == 404
        assert client.post("/healthz").status_code == 405
        assert client.get("/openapi.json").json()["info"]["title"] == "Kassa"
