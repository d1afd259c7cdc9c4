"""Webhook endpoints over the API: the secret shown once, the webhooks:manage scope, keys bound
to a customer account, the delivery log with its attempts, redelivery and replay."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from kassa.accounts import service as accounts
from kassa.api import create_app
from kassa.apikeys import service as apikeys
from kassa.config import Settings
from kassa.webhooks.settings import WebhookSettings

if TYPE_CHECKING:
    from tests.webhooks.conftest import Kit

LOOPBACK = WebhookSettings(jitter_percent=0).with_loopback()


class Client:
    def __init__(self, client: TestClient, kit: Kit) -> None:
        self.client = client
        self.kit = kit
        self.admin = self.key(["admin"])

    def key(self, scopes: list[str], account: str | None = None) -> str:
        with self.kit.db.transaction() as conn:
            bound = None if account is None else accounts.get_by_external_id(conn, account).id
            _key, token = apikeys.create_key(
                conn, name="k", scopes=scopes, customer_account_id=bound, now=self.kit.clock.now()
            )
        return token

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        response: httpx2.Response = self.client.get(path, headers=headers, params=params)
        return response

    def post(self, path: str, body: Any = None, token: str | None = None) -> httpx2.Response:
        headers = {
            "Authorization": f"Bearer {token or self.admin}",
            "Idempotency-Key": str(uuid.uuid4()),
        }
        response: httpx2.Response = self.client.post(path, json=body, headers=headers)
        return response


@pytest.fixture
def api(kit: Kit) -> Iterator[Client]:
    app = create_app(Settings(webhooks=LOOPBACK), database=kit.db, clock=kit.clock)
    with TestClient(app) as client:
        yield Client(client, kit)


def _account(api: Client, external_id: str) -> uuid.UUID:
    with api.kit.db.transaction() as conn:
        return accounts.create(
            conn, external_id=external_id, now=api.kit.clock.now(), request=None
        ).id


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_endpoints_are_managed_and_their_secret_shown_once(api: Client) -> None:
    url = api.kit.receiver.url()
    made = api.post("/v1/webhooks/endpoints", {"url": url, "event_types": ["deposit.*"]})
    assert made.status_code == 201, made.text
    secret, endpoint = made.json()["secret"], made.json()["endpoint"]
    assert secret.startswith("whsec_") and endpoint["status"] == "enabled"
    path = f"/v1/webhooks/endpoints/{endpoint['id']}"
    shown = api.get(path).json()
    assert "secret" not in shown and secret not in api.get("/v1/webhooks/endpoints").text
    assert shown["event_types"] == ["deposit.*"] and shown["created_by"] == "api-key:k"

    changed = api.post(path, {"description": "billing", "event_types": []}).json()
    assert (changed["description"], changed["event_types"], changed["url"]) == ("billing", [], url)
    assert api.post(f"{path}/disable", {"reason": "moving"}).json()["disabled_reason"] == "moving"
    assert api.post(f"{path}/enable").json()["status"] == "enabled"
    rotated = api.post(f"{path}/rotate-secret").json()
    assert rotated["secret"] != secret and rotated["endpoint"]["previous_secret_expires_at"]
    assert api.post(f"{path}/delete").json()["status"] == "deleted"
    assert api.get(path).json()["code"] == "webhook_endpoint_not_found"
    assert api.get("/v1/webhooks/endpoints").json()["endpoints"] == []


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_urls_are_checked_when_the_endpoint_is_made(api: Client) -> None:
    strict = create_app(Settings(), database=api.kit.db, clock=api.kit.clock)
    with TestClient(strict) as client:
        other = Client(client, api.kit)
        refused = other.post("/v1/webhooks/endpoints", {"url": "http://127.0.0.1:9/x"})
        assert refused.status_code == 422
        assert refused.json()["code"] == "invalid_webhook_endpoint"
        assert "must be https" in refused.json()["detail"] or "loopback" in refused.json()["detail"]
        metadata = other.post("/v1/webhooks/endpoints", {"url": "https://169.254.169.254/"})
        assert "link-local" in metadata.json()["detail"]
        fine = other.post("/v1/webhooks/endpoints", {"url": "https://hooks.example.com/k"})
        assert fine.status_code == 201, fine.text


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_the_scope_and_the_customer_fence(api: Client) -> None:
    x, _y = _account(api, "cust-x"), _account(api, "cust-y")
    reader = api.key(["accounts:read", "accounts:write"])
    refused = api.post("/v1/webhooks/endpoints", {"url": api.kit.receiver.url()}, token=reader)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")

    x_key = api.key(["webhooks:manage"], account="cust-x")
    own = api.post("/v1/webhooks/endpoints", {"url": api.kit.receiver.url("/x")}, token=x_key)
    assert own.json()["endpoint"]["external_id"] == "cust-x"
    foreign = api.post(
        "/v1/webhooks/endpoints",
        {"url": api.kit.receiver.url(), "external_id": "cust-y"},
        token=x_key,
    )
    assert foreign.json()["code"] == "account_not_found"
    operator = api.post(
        "/v1/webhooks/endpoints", {"url": api.kit.receiver.url("/y"), "external_id": "cust-y"}
    )
    assert operator.json()["endpoint"]["external_id"] == "cust-y"
    listed = api.get("/v1/webhooks/endpoints", x_key).json()["endpoints"]
    assert [e["id"] for e in listed] == [own.json()["endpoint"]["id"]]
    assert len(api.get("/v1/webhooks/endpoints").json()["endpoints"]) == 2
    # X's key sees X's events only: another account's event is missing.
    theirs = api.kit.event(account=_y_id(api))
    answer = api.post(f"/v1/webhooks/events/{theirs.public_id}/redeliver", {}, token=x_key)
    assert answer.json()["code"] == "event_not_found"
    mine = api.kit.event(account=x)
    redone = api.post(f"/v1/webhooks/events/{mine.public_id}/redeliver", {}, token=x_key).json()
    assert [d["endpoint_id"] for d in redone["deliveries"]] == [own.json()["endpoint"]["id"]]


def _y_id(api: Client) -> uuid.UUID:
    with api.kit.db.transaction() as conn:
        return accounts.get_by_external_id(conn, "cust-y").id


def test_the_delivery_log_shows_each_attempt_and_replays(api: Client) -> None:
    made = api.post("/v1/webhooks/endpoints", {"url": api.kit.receiver.url()}).json()
    api.kit.receiver.secrets["/hook"] = [made["secret"]]
    endpoint_id = made["endpoint"]["id"]
    api.kit.receiver.script("/hook", statuses=[500], body=b"busy")
    since = api.kit.clock.now()
    written = api.kit.event()
    sender = api.kit.sender(LOOPBACK)
    sender.run_once()
    api.kit.clock.advance(timedelta(seconds=5))
    sender.run_once()

    log = api.get("/v1/webhooks/deliveries", endpoint_id=endpoint_id).json()
    [delivery] = log["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["event_id"]) == (
        "succeeded",
        2,
        written.public_id,
    )
    detail = api.get(f"/v1/webhooks/deliveries/{delivery['id']}").json()
    assert [(a["status_code"], a["response_snippet"]) for a in detail["attempt_log"]] == [
        (500, "busy"),
        (200, "busy"),
    ]
    assert api.get("/v1/webhooks/deliveries", status="failed").json()["deliveries"] == []
    by_event = api.get("/v1/webhooks/deliveries", event_id=written.public_id).json()
    assert len(by_event["deliveries"]) == 1
    bad = api.get("/v1/webhooks/deliveries", status="lost")
    assert bad.json()["code"] == "invalid_webhook_endpoint"

    replayed = api.post(
        f"/v1/webhooks/endpoints/{endpoint_id}/replay", {"since": since.isoformat()}
    )
    assert replayed.json() == {"deliveries": 1}
    sender.run_once()
    assert [r.msg_id for r in api.kit.receiver.received] == [written.public_id] * 3
    assert all(r.verified_by for r in api.kit.receiver.received)
    page = api.get("/v1/webhooks/deliveries", limit=1).json()
    assert page["next_before"] == page["deliveries"][0]["id"]
    older = api.get("/v1/webhooks/deliveries", limit=1, before=page["next_before"]).json()
    assert older["deliveries"][0]["origin"] == "event"
