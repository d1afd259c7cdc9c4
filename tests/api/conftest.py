"""API test harness: the real app on the `db` fixture's database (SQLite and PostgreSQL),
driven through FastAPI's TestClient, with the manual clock as the server's clock.

Test modules import `Api` under `TYPE_CHECKING` only (pytest imports conftest itself, and
several conftest modules share that name); the `api` fixture hands out an instance.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from kassa.accounts import service as accounts
from kassa.api import create_app
from kassa.apikeys import service as apikeys
from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.db import Database


class Api:
    """A client plus shortcuts for the setup steps most tests share."""

    def __init__(self, client: TestClient, db: Database, clock: ManualClock) -> None:
        self.client = client
        self.db = db
        self.clock = clock
        self.admin = self.key(["admin"], name="test-admin")

    def key(
        self, scopes: Sequence[str], *, account: str | None = None, name: str = "test-key"
    ) -> str:
        with self.db.transaction() as conn:
            bound = None if account is None else accounts.get_by_external_id(conn, account).id
            _key, token = apikeys.create_key(
                conn, name=name, scopes=scopes, customer_account_id=bound, now=self.clock.now()
            )
        return token

    def get(
        self, path: str, token: str | None = None, *, params: dict[str, Any] | None = None
    ) -> httpx2.Response:
        response: httpx2.Response = self.client.get(
            path, headers=self._auth(token or self.admin), params=params
        )
        return response

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        key: str | None = "",
    ) -> httpx2.Response:
        """POST with a fresh Idempotency-Key unless `key` is given (None sends none)."""
        headers = self._auth(token or self.admin)
        if key is not None:
            headers["Idempotency-Key"] = key or str(uuid.uuid4())
        response: httpx2.Response = self.client.post(path, json=body, headers=headers)
        return response

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @staticmethod
    def usd(amount: Any) -> dict[str, Any]:
        return {"amount": amount, "asset": "USD"}

    @staticmethod
    def problem(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
        """Assert the response is an RFC 9457 problem with our stable code; return its body."""
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        body: dict[str, Any] = response.json()
        assert body["code"] == code, body
        assert body["status"] == status
        assert body["type"] == f"urn:kassa:problem:{code}"
        assert body["title"] and body["detail"]
        assert body["instance"] == response.request.url.path
        # Customers read their own names, never the ledger's (issue 13, item 10).
        assert "user:" not in body["detail"], body
        return body

    # -- shortcuts -------------------------------------------------------------------

    def account(self, external_id: str, funds: str | None = None) -> dict[str, Any]:
        created = self.post("/v1/accounts", {"external_id": external_id})
        assert created.status_code == 201, created.text
        if funds is not None:
            self.adjust(external_id, "credit", funds)
        body: dict[str, Any] = created.json()
        return body

    def adjust(self, external_id: str, direction: str, amount: str) -> httpx2.Response:
        response = self.post(
            "/v1/admin/adjustments",
            {
                "external_id": external_id,
                "direction": direction,
                "amount": self.usd(amount),
                "reason": "test",
            },
        )
        assert response.status_code == 201, response.text
        return response

    def balance(self, external_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/accounts/{external_id}/balance")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def available(self, external_id: str) -> str:
        return str(self.balance(external_id)["available"]["amount"])

    def ledger(self, external_id: str) -> list[dict[str, Any]]:
        response = self.get(f"/v1/accounts/{external_id}/ledger", params={"limit": 200})
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries


@pytest.fixture
def api(db: Database, clock: ManualClock) -> Iterator[Api]:
    app = create_app(Settings(), database=db, clock=clock)
    with TestClient(app) as client:
        yield Api(client, db, clock)
