"""Issue 13, item 5: a retry with the same Idempotency-Key gets the first answer back — its
status and body, byte for byte — and does nothing again, on every POST that changes something.

Before the fix a replay answered with the resource's *current* state (create a hold, capture
it, re-send the create: `201 "status": "captured"`), the scenario clock moved twice, and
cancel/approve/reject ignored the key (the retry answered a different status).

One test walks every POST route of the app: each has a recipe below that makes its
preconditions and the request; the request is sent, the world is changed where that matters,
and the same request is sent again with the same key. A POST route without a recipe fails the
walk, so a new route is covered as soon as it exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from kassa.api import create_app
from kassa.api.idempotency import REPLAYED_HEADER
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.config import Settings
from kassa.db.metadata import metadata
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.events.outbox import record
from kassa.ledger.tables import idempotency_record
from kassa.payouts.model import FEE_ABOVE_QUOTE
from kassa.payouts.tables import payout_request
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa.webhooks import deliveries
from kassa_dev.scenario import ScenarioClock

if TYPE_CHECKING:
    from tests.api.conftest import Api

PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"
SENDER = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"
#: Rows a replay may touch without doing anything: the key's own record, and the key's
#: last-use time.
NOT_EFFECTS = frozenset({"idempotency_record", "api_key"})


def world(api: Api) -> dict[str, list[str]]:
    """Every row of every table but `NOT_EFFECTS`, as text: what a replay must not change."""
    with api.db.transaction() as conn:
        return {
            table.name: sorted(str(tuple(row)) for row in conn.execute(select(table)))
            for table in metadata.sorted_tables
            if table.name not in NOT_EFFECTS
        }


def prices(api: Api) -> None:
    PricingService(
        api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal("50000")})
    ).refresh([Symbol.BTC])


def withdrawal(api: Api, external_id: str, amount: str = "30") -> str:
    prices(api)
    made = api.post(
        "/v1/withdrawals",
        {"external_id": external_id, "asset": "BTC", "address": PAYEE, "amount": api.usd(amount)},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def waiting_on_fee(api: Api) -> str:
    """An approved withdrawal the payout worker left waiting on a network fee above its quote
    (set as the worker leaves it: its chain run is in tests/payouts/worker)."""
    request_id = withdrawal(api, "a")
    approved = api.post(f"/v1/admin/payouts/{request_id}/approve", {})
    assert approved.json()["status"] == "approved", approved.text
    with api.db.transaction() as conn:
        conn.execute(
            update(payout_request)
            .where(payout_request.c.id == uuid.UUID(request_id))
            .values(wait_reason=f"{FEE_ABOVE_QUOTE}: the chain asks more")
        )
    return request_id


def withdrawal_body(api: Api) -> dict[str, Any]:
    prices(api)
    return {"external_id": "a", "asset": "BTC", "address": PAYEE, "amount": api.usd("30")}


def top_up(api: Api, external_id: str) -> str:
    """A BTC top-up of 0.001 BTC from SENDER, credited by a real watcher ($50.00)."""
    prices(api)
    address = api.post(f"/v1/accounts/{external_id}/deposit-addresses", {"chain": "btc"}).json()
    chain = FakeChain(Chain.BTC, api.clock.now() - timedelta(minutes=1), final_depth=1)
    transfer = ChainTransfer(
        Chain.BTC, "BTC", "ab" * 32, 0, address["address"], 100_000, SENDER, SenderKind.KNOWN, True
    )
    chain.mine([transfer], seconds=30)
    pricing = PricingService(api.db, api.clock, PricingSettings(history_tolerance_seconds=3600))
    Watcher(api.db, api.clock, chain, pricing, WatcherConfig(Chain.BTC)).tick()
    [deposit] = api.get(f"/v1/accounts/{external_id}/deposits").json()["deposits"]
    assert deposit["status"] == "credited", deposit
    return str(deposit["id"])


def hold(api: Api, external_id: str) -> str:
    made = api.post(f"/v1/accounts/{external_id}/holds", {"amount": api.usd("10")})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def activation(api: Api, external_id: str) -> str:
    made = api.post(f"/v1/accounts/{external_id}/activations", {"price": api.usd("5")})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def dispute(api: Api, external_id: str) -> str:
    """An open dispute about a fresh top-up of `external_id`."""
    body = {
        "external_id": external_id,
        "subject": "deposit",
        "subject_id": top_up(api, external_id),
        "reason": "paid twice",
    }
    made = api.post("/v1/admin/disputes", body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _resolve_rejected(api: Api, _path: str, opened: dict[str, Any]) -> None:
    resolved = api.post(
        f"/v1/admin/disputes/{opened['id']}/resolve", {"outcome": "rejected", "note": "no"}
    )
    assert resolved.json()["status"] == "rejected", resolved.text


def webhook_endpoint(api: Api, *, disabled: bool = False) -> str:
    made = api.post("/v1/webhooks/endpoints", {"url": "https://hooks.example.com/k"})
    assert made.status_code == 201, made.text
    endpoint_id = str(made.json()["endpoint"]["id"])
    if disabled:
        assert api.post(f"/v1/webhooks/endpoints/{endpoint_id}/disable", {}).status_code == 200
    return endpoint_id


def webhook_event(api: Api) -> str:
    """An event fanned out to one endpoint (written as a state change writes it)."""
    webhook_endpoint(api)
    with api.db.transaction() as conn:
        written = record(
            conn,
            type="account.state_changed",
            subject_kind="account",
            subject_id=uuid.uuid4(),
            data={},
            at=api.clock.now(),
        )
        deliveries.dispatch(conn, now=api.clock.now(), limit=10)
    return written.public_id


def _rotate(api: Api, _path: str, created: dict[str, Any]) -> None:
    endpoint_id = created["endpoint"]["id"]
    assert api.post(f"/v1/webhooks/endpoints/{endpoint_id}/rotate-secret").status_code == 200


@dataclass(frozen=True)
class Recipe:
    """Preconditions and the request for one POST route; `meanwhile` then changes the world
    the way a naive replay would reveal (the resource moves on, the balance changes)."""

    make: Callable[[Api], tuple[str, Any]]
    meanwhile: Callable[[Api, str, dict[str, Any]], object] = lambda api, path, first: None


def _capture(api: Api, _path: str, created: dict[str, Any]) -> None:
    assert api.post(f"/v1/holds/{created['id']}/capture").json()["status"] == "captured"


RECIPES: dict[str, Recipe] = {
    "/v1/accounts": Recipe(lambda api: ("/v1/accounts", {"external_id": "new-1"})),
    "/v1/admin/accounts/{external_id}/state": Recipe(
        lambda api: (
            "/v1/admin/accounts/a/state",
            {"state": "suspended", "reason_code": "violation", "reason": "abuse report"},
        ),
        lambda api, path, first: api.post(
            path, {"state": "active", "reason_code": "customer_request", "reason": "resolved"}
        ),
    ),
    "/v1/accounts/{external_id}/holds": Recipe(
        lambda api: ("/v1/accounts/a/holds", {"amount": api.usd("12.50")}),
        # The finding: capture the hold, and the replayed create said "captured".
        _capture,
    ),
    "/v1/holds/{hold_id}/capture": Recipe(
        lambda api: (f"/v1/holds/{hold(api, 'a')}/capture", {"amount": api.usd("4")})
    ),
    "/v1/holds/{hold_id}/void": Recipe(lambda api: (f"/v1/holds/{hold(api, 'a')}/void", None)),
    "/v1/admin/adjustments": Recipe(
        lambda api: (
            "/v1/admin/adjustments",
            {"external_id": "a", "direction": "credit", "amount": api.usd("1"), "reason": "x"},
        ),
        lambda api, path, first: api.adjust("a", "debit", "1"),
    ),
    "/v1/accounts/{external_id}/deposit-addresses": Recipe(
        lambda api: ("/v1/accounts/a/deposit-addresses", {"chain": "btc"})
    ),
    "/v1/accounts/{external_id}/usage": Recipe(
        lambda api: (
            "/v1/accounts/a/usage",
            {"events": [{"event_id": "e-1", "amount": api.usd("0.25"), "description": "call"}]},
        ),
        lambda api, path, first: api.adjust("a", "credit", "3"),
    ),
    "/v1/accounts/{external_id}/activations": Recipe(
        lambda api: ("/v1/accounts/a/activations", {"price": api.usd("5")})
    ),
    "/v1/accounts/{external_id}/activations/{activation_id}/cancel": Recipe(
        lambda api: (f"/v1/accounts/a/activations/{activation(api, 'a')}/cancel", None)
    ),
    "/v1/accounts/{external_id}/activations/{activation_id}/fulfil": Recipe(
        lambda api: (f"/v1/accounts/a/activations/{activation(api, 'a')}/fulfil", None)
    ),
    "/v1/withdrawals": Recipe(
        lambda api: ("/v1/withdrawals", withdrawal_body(api)),
        lambda api, path, first: api.adjust("a", "credit", "7"),
    ),
    "/v1/withdrawals/{request_id}/cancel": Recipe(
        lambda api: (f"/v1/withdrawals/{withdrawal(api, 'a')}/cancel", {"reason": "oops"})
    ),
    "/v1/refunds": Recipe(
        lambda api: ("/v1/refunds", {"external_id": "a", "deposit_id": top_up(api, "a")})
    ),
    "/v1/refunds/{request_id}/cancel": Recipe(
        lambda api: (
            "/v1/refunds/"
            + api.post("/v1/refunds", {"external_id": "a", "deposit_id": top_up(api, "a")}).json()[
                "id"
            ]
            + "/cancel",
            {},
        )
    ),
    "/v1/admin/payouts/{request_id}/approve": Recipe(
        lambda api: (f"/v1/admin/payouts/{withdrawal(api, 'a')}/approve", {"note": "known"})
    ),
    "/v1/admin/payouts/{request_id}/approve-fee": Recipe(
        lambda api: (f"/v1/admin/payouts/{waiting_on_fee(api)}/approve-fee", {"note": "spike"})
    ),
    "/v1/admin/payouts/{request_id}/reject": Recipe(
        lambda api: (f"/v1/admin/payouts/{withdrawal(api, 'a')}/reject", {"reason": "no"})
    ),
    "/v1/admin/disputes": Recipe(
        lambda api: (
            "/v1/admin/disputes",
            {
                "external_id": "a",
                "subject": "deposit",
                "subject_id": top_up(api, "a"),
                "reason": "paid twice",
            },
        ),
        # Resolved since: the replayed open still says "open".
        _resolve_rejected,
    ),
    "/v1/admin/disputes/{dispute_id}/resolve": Recipe(
        lambda api: (
            f"/v1/admin/disputes/{dispute(api, 'a')}/resolve",
            {"outcome": "chargeback", "note": "processor chargeback"},
        ),
        lambda api, path, first: api.adjust("a", "credit", "2"),
    ),
    "/v1/webhooks/endpoints": Recipe(
        lambda api: ("/v1/webhooks/endpoints", {"url": "https://hooks.example.com/a"}),
        # Rotated since: the replayed create still shows the first secret.
        _rotate,
    ),
    "/v1/webhooks/endpoints/{endpoint_id}": Recipe(
        lambda api: (f"/v1/webhooks/endpoints/{webhook_endpoint(api)}", {"description": "new"})
    ),
    "/v1/webhooks/endpoints/{endpoint_id}/disable": Recipe(
        lambda api: (f"/v1/webhooks/endpoints/{webhook_endpoint(api)}/disable", {"reason": "x"}),
        lambda api, path, first: api.post(path.replace("/disable", "/enable")),
    ),
    "/v1/webhooks/endpoints/{endpoint_id}/enable": Recipe(
        lambda api: (
            f"/v1/webhooks/endpoints/{webhook_endpoint(api, disabled=True)}/enable",
            None,
        )
    ),
    "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret": Recipe(
        lambda api: (f"/v1/webhooks/endpoints/{webhook_endpoint(api)}/rotate-secret", None),
        lambda api, path, first: api.post(path),
    ),
    "/v1/webhooks/endpoints/{endpoint_id}/delete": Recipe(
        lambda api: (f"/v1/webhooks/endpoints/{webhook_endpoint(api)}/delete", None)
    ),
    "/v1/webhooks/endpoints/{endpoint_id}/replay": Recipe(
        lambda api: (
            f"/v1/webhooks/endpoints/{webhook_endpoint(api)}/replay",
            {"since": "2026-01-01T00:00:00Z"},
        ),
        lambda api, path, first: webhook_event(api),
    ),
    "/v1/webhooks/events/{event_id}/redeliver": Recipe(
        lambda api: (f"/v1/webhooks/events/{webhook_event(api)}/redeliver", {})
    ),
}
#: Tested on their own (they need the devnet's scenario clock): the clock below, the market's
#: rates in tests/api/test_api_devnet_market.py.
SEPARATE = {"/v1/admin/clock", "/v1/admin/rates"}
#: POSTs that change nothing and take no key.
QUOTES = {"/v1/refunds/quote", "/v1/withdrawals/quote"}


def post_routes() -> set[str]:
    paths = create_app(Settings()).openapi()["paths"]
    return {path for path, operations in paths.items() if "post" in operations}


def test_every_post_route_has_a_recipe() -> None:
    assert post_routes() == set(RECIPES) | SEPARATE | QUOTES


@pytest.mark.parametrize("route", sorted(RECIPES))
def test_a_retry_gets_the_first_answer_and_changes_nothing(api: Api, route: str) -> None:
    recipe = RECIPES[route]
    api.account("a", funds="100")
    path, body = recipe.make(api)
    key = f"once-{uuid.uuid4()}"

    first = api.post(path, body, key=key)
    assert first.status_code < 300, first.text
    assert REPLAYED_HEADER.lower() not in {h.lower() for h in first.headers}
    recipe.meanwhile(api, path, first.json())
    before = world(api)

    again = api.post(path, body, key=key)
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers[REPLAYED_HEADER] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert world(api) == before, "a replay changed something"

    # The key belongs to that one request: another request under it is refused.
    other = api.post("/v1/accounts", {"external_id": "other-1"}, key=key)
    api.problem(other, 409, "idempotency_key_reused")
    assert world(api) == before


def test_a_created_hold_replays_as_created_after_its_capture(api: Api) -> None:
    """The audit's example, spelled out."""
    api.account("a", funds="100")
    first = api.post("/v1/accounts/a/holds", {"amount": api.usd("10")}, key="h-1")
    assert (first.status_code, first.json()["status"]) == (201, "pending")
    assert api.post(f"/v1/holds/{first.json()['id']}/capture").json()["status"] == "captured"
    again = api.post("/v1/accounts/a/holds", {"amount": api.usd("10")}, key="h-1")
    assert (again.status_code, again.json()["status"]) == (201, "pending")
    assert again.json() == first.json()
    assert api.available("a") == "90.00"


def test_a_refusal_is_replayed_even_after_the_facts_change(api: Api) -> None:
    """A withdrawal refused for want of funds stays refused under its key once funded: the
    key's outcome is the refusal, as the client was told."""
    api.account("a", funds="10")
    prices(api)
    body = {"external_id": "a", "asset": "BTC", "address": PAYEE, "amount": api.usd("30")}
    refused = api.post("/v1/withdrawals", body, key="w-1")
    first = api.problem(refused, 409, "withdrawal_refused")
    api.adjust("a", "credit", "100")
    again = api.post("/v1/withdrawals", body, key="w-1")
    assert again.json() == first and again.headers[REPLAYED_HEADER] == "true"
    assert api.get("/v1/accounts/a/payouts").json()["requests"] == []
    fresh = api.post("/v1/withdrawals", body, key="w-2")
    assert fresh.status_code == 201, fresh.text


def test_cancel_approve_and_reject_retried_answer_the_same(api: Api) -> None:
    api.account("a", funds="100")
    one, two = withdrawal(api, "a"), withdrawal(api, "a", "20")
    for path, body in (
        (f"/v1/admin/payouts/{one}/approve", {"note": "ok"}),
        (f"/v1/admin/payouts/{two}/reject", {"reason": "no"}),
    ):
        first = api.post(path, body, key=f"k-{path}")
        assert first.status_code == 200, first.text
        again = api.post(path, body, key=f"k-{path}")
        assert (again.status_code, again.content) == (first.status_code, first.content)
    approvals = api.get(f"/v1/admin/payouts/{one}").json()["approvals"]
    assert len(approvals) == 1
    cancel = f"/v1/withdrawals/{one}/cancel"
    first = api.post(cancel, {}, key="c-1")
    assert first.json()["status"] == "cancelled"
    again = api.post(cancel, {}, key="c-1")
    assert (again.status_code, again.content) == (200, first.content)
    # A new key is a new request: now refused, the request is no longer pending.
    api.problem(api.post(cancel, {}, key="c-2"), 409, "payout_request_not_pending")


def test_the_scenario_clock_moves_once_per_key(api: Api) -> None:
    clock = ScenarioClock()
    with TestClient(create_app(Settings(), database=api.db, clock=clock)) as client:
        devnet = type(api)(client, api.db, api.clock)
        first = devnet.post("/v1/admin/clock", {"advance_seconds": 3600}, key="t-1")
        assert first.status_code == 200, first.text
        again = devnet.post("/v1/admin/clock", {"advance_seconds": 3600}, key="t-1")
        assert (again.status_code, again.content) == (200, first.content)
        assert again.headers[REPLAYED_HEADER] == "true"
        with api.db.transaction() as conn:
            assert clock.offset(conn) == timedelta(hours=1)
        third = devnet.post("/v1/admin/clock", {"advance_seconds": 3600}, key="t-2")
        assert third.json()["offset_seconds"] == 7200


def test_quotes_take_no_key(api: Api) -> None:
    api.account("a", funds="100")
    prices(api)
    body = {"external_id": "a", "asset": "BTC", "address": PAYEE, "amount": api.usd("30")}
    quoted = api.post("/v1/withdrawals/quote", body, key=None)
    assert quoted.status_code == 200, quoted.text
    assert quoted.json()["allowed"] is True


def test_a_key_kept_before_answers_were_stored_is_answered_from_its_outcome(api: Api) -> None:
    """Records written before migration 0007 have an outcome but no answer: a retry is
    answered from the outcome (the resource as it is), and that answer is kept from then on."""
    api.account("a", funds="100")
    body = {"amount": api.usd("10")}
    first = api.post("/v1/accounts/a/holds", body, key="old-1")
    with api.db.transaction() as conn:
        conn.execute(
            update(idempotency_record)
            .where(idempotency_record.c.key == "old-1")
            .values(response_status=None, response_body=None)
        )
    again = api.post("/v1/accounts/a/holds", body, key="old-1")
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert REPLAYED_HEADER not in again.headers
    third = api.post("/v1/accounts/a/holds", body, key="old-1")
    assert third.content == again.content and third.headers[REPLAYED_HEADER] == "true"
    assert api.available("a") == "90.00"
