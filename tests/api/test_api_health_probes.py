"""Health for its two audiences (issue 13, item 10): `/v1/health` shows internals to admin keys
only; `/healthz` and `/readyz` answer load balancers without a key, and `/readyz` is 503 unless
the database answers at this code's migration head."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from kassa.api import create_app
from kassa.config import Settings
from kassa.db import Database
from kassa.db.migrate import downgrade, head_revision, upgrade

if TYPE_CHECKING:
    from tests.api.conftest import Api


def test_only_admin_keys_see_the_internals(api: Api) -> None:
    api.account("u1")
    for token in (
        api.key(["accounts:read"]),
        api.key(["accounts:read", "accounts:write"]),
        api.key(["accounts:read"], account="u1"),
    ):
        response = api.get("/v1/health", token)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    internals = api.get("/v1/health").json()
    assert internals["database"] == api.db.dialect
    assert internals["migration"] == head_revision()


def test_healthz_needs_no_key(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_follows_the_schema(api: Api) -> None:
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}

    downgrade(api.db.engine, "-1")
    behind = api.problem(api.client.get("/readyz"), 503, "not_ready")
    assert "migration head" in behind["detail"]
    assert api.client.get("/healthz").status_code == 200

    upgrade(api.db.engine)
    assert api.client.get("/readyz").status_code == 200


def test_readyz_on_an_empty_database_is_503(api: Api, tmp_path: Path) -> None:
    empty = Database.from_url(f"sqlite:///{tmp_path}/empty.sqlite3")
    try:
        app = create_app(Settings(), database=empty, clock=api.clock)
        with TestClient(app) as client:
            api.problem(client.get("/readyz"), 503, "not_ready")
    finally:
        empty.dispose()


def test_readyz_when_the_database_does_not_answer_is_503(api: Api) -> None:
    absent = Database.from_url("postgresql+psycopg://postgres@127.0.0.1:5432/kassa_no_such_db")
    try:
        app = create_app(Settings(), database=absent, clock=api.clock)
        with TestClient(app) as client:
            body = api.problem(client.get("/readyz"), 503, "not_ready")
            assert body["detail"] == "the database does not answer"
            assert client.get("/healthz").status_code == 200
    finally:
        absent.dispose()
