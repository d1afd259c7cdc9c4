"""Another customer's objects answer exactly as missing ones (issue 13, item 1).

A key bound to account X asks, on every route that takes an object id, for account Y's object
and then for an id that does not exist: the two answers must be equal (status, code, title,
detail and instance), the id sent aside. The routes are enumerated from the app itself, so a new
route with an id in its path fails the test until it is listed here; ids carried in a body
(quotes, refunds, withdrawals) are walked as well. Nothing of Y changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import astuple, dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kassa.accounts import service as accounts
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.events.outbox import record
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa.webhooks import deliveries

if TYPE_CHECKING:
    from tests.api.conftest import Api

READ_WRITE = ["accounts:read", "accounts:write", "webhooks:manage"]
X, Y = "cust-x-3e1d", "cust-y-7f3b"
SENDER = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"
PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"


def top_up(api: Api, external_id: str, sats: int) -> str:
    """A BTC top-up from SENDER credited by a real watcher at $50 000 (as test_api_payouts)."""
    PricingService(
        api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal("50000")})
    ).refresh([Symbol.BTC])
    address = api.post(f"/v1/accounts/{external_id}/deposit-addresses", {"chain": "btc"}).json()
    chain = FakeChain(Chain.BTC, api.clock.now() - timedelta(minutes=1), final_depth=1)
    transfer = ChainTransfer(
        Chain.BTC, "BTC", "cd" * 32, 0, address["address"], sats, SENDER, SenderKind.KNOWN, True
    )
    chain.mine([transfer], seconds=30)
    pricing = PricingService(api.db, api.clock, PricingSettings(history_tolerance_seconds=3600))
    Watcher(api.db, api.clock, chain, pricing, WatcherConfig(Chain.BTC)).tick()
    [deposit] = api.get(f"/v1/accounts/{external_id}/deposits").json()["deposits"]
    assert deposit["status"] == "credited", deposit
    deposit_id: str = deposit["id"]
    return deposit_id


@dataclass(frozen=True)
class Ids:
    """One value per path parameter: Y's object, or one that does not exist."""

    external_id: str
    hold_id: str
    activation_id: str
    refund_id: str
    withdrawal_id: str
    deposit_id: str
    dispute_id: str = ""
    endpoint_id: str = ""
    delivery_id: str = ""
    event_id: str = ""


def usage_body(_: Ids) -> dict[str, Any]:
    return {"events": [{"event_id": "e-1", "amount": USD1, "description": "call"}]}


USD1 = {"amount": "1", "asset": "USD"}
NO_BODY: Callable[[Ids], Any] = lambda _: None  # noqa: E731

#: (method, route path) -> (concrete path from the ids, request body from the ids)
ROUTES: dict[tuple[str, str], tuple[Callable[[Ids], str], Callable[[Ids], Any]]] = {
    ("GET", "/v1/accounts/{external_id}"): (lambda i: f"/v1/accounts/{i.external_id}", NO_BODY),
    ("GET", "/v1/accounts/{external_id}/balance"): (
        lambda i: f"/v1/accounts/{i.external_id}/balance",
        NO_BODY,
    ),
    ("GET", "/v1/accounts/{external_id}/ledger"): (
        lambda i: f"/v1/accounts/{i.external_id}/ledger",
        NO_BODY,
    ),
    ("POST", "/v1/accounts/{external_id}/holds"): (
        lambda i: f"/v1/accounts/{i.external_id}/holds",
        lambda _: {"amount": USD1, "expires_in_seconds": 60},
    ),
    ("GET", "/v1/holds/{hold_id}"): (lambda i: f"/v1/holds/{i.hold_id}", NO_BODY),
    ("POST", "/v1/holds/{hold_id}/capture"): (
        lambda i: f"/v1/holds/{i.hold_id}/capture",
        NO_BODY,
    ),
    ("POST", "/v1/holds/{hold_id}/void"): (lambda i: f"/v1/holds/{i.hold_id}/void", NO_BODY),
    ("POST", "/v1/accounts/{external_id}/deposit-addresses"): (
        lambda i: f"/v1/accounts/{i.external_id}/deposit-addresses",
        lambda _: {"chain": "btc"},
    ),
    ("GET", "/v1/accounts/{external_id}/deposit-addresses"): (
        lambda i: f"/v1/accounts/{i.external_id}/deposit-addresses",
        NO_BODY,
    ),
    ("GET", "/v1/accounts/{external_id}/deposits"): (
        lambda i: f"/v1/accounts/{i.external_id}/deposits",
        NO_BODY,
    ),
    ("GET", "/v1/accounts/{external_id}/deposits/{deposit_id}"): (
        lambda i: f"/v1/accounts/{i.external_id}/deposits/{i.deposit_id}",
        NO_BODY,
    ),
    ("POST", "/v1/accounts/{external_id}/usage"): (
        lambda i: f"/v1/accounts/{i.external_id}/usage",
        usage_body,
    ),
    ("POST", "/v1/accounts/{external_id}/activations"): (
        lambda i: f"/v1/accounts/{i.external_id}/activations",
        lambda _: {"price": USD1},
    ),
    ("GET", "/v1/accounts/{external_id}/activations/{activation_id}"): (
        lambda i: f"/v1/accounts/{i.external_id}/activations/{i.activation_id}",
        NO_BODY,
    ),
    ("POST", "/v1/accounts/{external_id}/activations/{activation_id}/cancel"): (
        lambda i: f"/v1/accounts/{i.external_id}/activations/{i.activation_id}/cancel",
        NO_BODY,
    ),
    ("POST", "/v1/accounts/{external_id}/activations/{activation_id}/fulfil"): (
        lambda i: f"/v1/accounts/{i.external_id}/activations/{i.activation_id}/fulfil",
        NO_BODY,
    ),
    ("POST", "/v1/admin/accounts/{external_id}/state"): (
        lambda i: f"/v1/admin/accounts/{i.external_id}/state",
        lambda _: {"state": "suspended", "reason_code": "violation", "reason": "x"},
    ),
    ("GET", "/v1/admin/accounts/{external_id}/state"): (
        lambda i: f"/v1/admin/accounts/{i.external_id}/state",
        NO_BODY,
    ),
    ("GET", "/v1/refunds/{request_id}"): (lambda i: f"/v1/refunds/{i.refund_id}", NO_BODY),
    ("POST", "/v1/refunds/{request_id}/cancel"): (
        lambda i: f"/v1/refunds/{i.refund_id}/cancel",
        lambda _: {},
    ),
    ("GET", "/v1/withdrawals/{request_id}"): (
        lambda i: f"/v1/withdrawals/{i.withdrawal_id}",
        NO_BODY,
    ),
    ("POST", "/v1/withdrawals/{request_id}/cancel"): (
        lambda i: f"/v1/withdrawals/{i.withdrawal_id}/cancel",
        lambda _: {},
    ),
    ("GET", "/v1/accounts/{external_id}/payouts"): (
        lambda i: f"/v1/accounts/{i.external_id}/payouts",
        NO_BODY,
    ),
    ("GET", "/v1/admin/payouts/{request_id}"): (
        lambda i: f"/v1/admin/payouts/{i.withdrawal_id}",
        NO_BODY,
    ),
    ("POST", "/v1/admin/payouts/{request_id}/approve"): (
        lambda i: f"/v1/admin/payouts/{i.withdrawal_id}/approve",
        lambda _: {},
    ),
    ("POST", "/v1/admin/payouts/{request_id}/reject"): (
        lambda i: f"/v1/admin/payouts/{i.withdrawal_id}/reject",
        lambda _: {"reason": "x"},
    ),
    ("POST", "/v1/admin/payouts/{request_id}/approve-fee"): (
        lambda i: f"/v1/admin/payouts/{i.withdrawal_id}/approve-fee",
        lambda _: {},
    ),
    ("GET", "/v1/accounts/{external_id}/disputes"): (
        lambda i: f"/v1/accounts/{i.external_id}/disputes",
        NO_BODY,
    ),
    ("GET", "/v1/admin/disputes/{dispute_id}"): (
        lambda i: f"/v1/admin/disputes/{i.dispute_id}",
        NO_BODY,
    ),
    ("POST", "/v1/admin/disputes/{dispute_id}/resolve"): (
        lambda i: f"/v1/admin/disputes/{i.dispute_id}/resolve",
        lambda _: {"outcome": "rejected", "note": "x"},
    ),
    ("GET", "/v1/webhooks/endpoints/{endpoint_id}"): (
        lambda i: f"/v1/webhooks/endpoints/{i.endpoint_id}",
        NO_BODY,
    ),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}"): (
        lambda i: f"/v1/webhooks/endpoints/{i.endpoint_id}",
        lambda _: {"description": "x"},
    ),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/disable"): (
        lambda i: f"/v1/webhooks/endpoints/{i.endpoint_id}/disable",
        lambda _: {},
    ),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/enable"): (
        lambda i: f"/v1/webhooks/endpoints/{i.endpoint_id}/enable",
        NO_BODY,
    ),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/rotate-secret"): (
        lambda i: f"/v1/webhooks/endpoints/{i.endpoint_id}/rotate-secret",
        NO_BODY,
    ),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/replay"): (
        lambda i: f"/v1/webhooks/endpoints/{i.endpoint_id}/replay",
        lambda _: {"since": "2026-01-01T00:00:00Z"},
    ),
    ("POST", "/v1/webhooks/endpoints/{endpoint_id}/delete"): (
        lambda i: f"/v1/webhooks/endpoints/{i.endpoint_id}/delete",
        NO_BODY,
    ),
    ("GET", "/v1/webhooks/deliveries/{delivery_id}"): (
        lambda i: f"/v1/webhooks/deliveries/{i.delivery_id}",
        NO_BODY,
    ),
    ("POST", "/v1/webhooks/events/{event_id}/redeliver"): (
        lambda i: f"/v1/webhooks/events/{i.event_id}/redeliver",
        lambda _: {},
    ),
    # Ids in the body rather than the path.
    ("POST", "/v1/webhooks/endpoints"): (
        lambda _: "/v1/webhooks/endpoints",
        lambda i: {"url": "https://hooks.example.com/k", "external_id": i.external_id},
    ),
    ("POST", "/v1/refunds/quote"): (lambda _: "/v1/refunds/quote", lambda i: refund_body(i)),
    ("POST", "/v1/refunds"): (lambda _: "/v1/refunds", lambda i: refund_body(i)),
    ("POST", "/v1/withdrawals/quote"): (
        lambda _: "/v1/withdrawals/quote",
        lambda i: withdrawal_body(i),
    ),
    ("POST", "/v1/withdrawals"): (lambda _: "/v1/withdrawals", lambda i: withdrawal_body(i)),
}

#: Routes whose path parameter names no customer's object.
NOT_OWNED = {("GET", "/v1/rates/{asset}")}


def webhook_objects(api: Api, external_id: str) -> tuple[str, str, str]:
    """An endpoint of `external_id`'s (made by its own key), an event of the account's and
    the endpoint's delivery of it."""
    key = api.key(["webhooks:manage"], account=external_id, name="y-hooks")
    made = api.post("/v1/webhooks/endpoints", {"url": "https://hooks.example.com/y"}, token=key)
    assert made.status_code == 201, made.text
    with api.db.transaction() as conn:
        owner = accounts.get_by_external_id(conn, external_id).id
        written = record(
            conn,
            type="deposit.credited",
            subject_kind="deposit",
            subject_id=uuid.uuid4(),
            data={},
            at=api.clock.now(),
            account_id=owner,
        )
        deliveries.dispatch(conn, now=api.clock.now(), limit=100)
    listed = api.get("/v1/webhooks/deliveries", key).json()["deliveries"]
    [delivery] = [d for d in listed if d["event_id"] == written.public_id]
    return str(made.json()["endpoint"]["id"]), str(delivery["id"]), written.public_id


def refund_body(ids: Ids) -> dict[str, Any]:
    return {"external_id": ids.external_id, "deposit_id": ids.deposit_id}


def withdrawal_body(ids: Ids) -> dict[str, Any]:
    amount = {"amount": "30", "asset": "USD"}
    return {"external_id": ids.external_id, "asset": "BTC", "address": PAYEE, "amount": amount}


def routes_with_ids(api: Api) -> set[tuple[str, str]]:
    paths: dict[str, dict[str, Any]] = api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops if "{" in path}


def test_every_route_with_an_id_is_walked(api: Api) -> None:
    listed = {route for route in ROUTES if "{" in route[1]} | NOT_OWNED
    assert routes_with_ids(api) == listed


def test_another_accounts_objects_answer_as_missing_ones(api: Api) -> None:
    api.account(X, funds="100")
    api.account(Y, funds="100")
    deposit_id = top_up(api, Y, 100_000)
    hold = api.post(f"/v1/accounts/{Y}/holds", {"amount": USD1, "expires_in_seconds": 600}).json()
    activation = api.post(f"/v1/accounts/{Y}/activations", {"price": USD1}).json()
    made = api.post("/v1/withdrawals", withdrawal_body(Ids(Y, "", "", "", "", "")))
    refund = api.post("/v1/refunds", {"external_id": Y, "deposit_id": deposit_id})
    assert made.status_code == refund.status_code == 201, (made.text, refund.text)
    body = {"external_id": Y, "subject": "deposit", "subject_id": deposit_id, "reason": "x"}
    dispute = api.post("/v1/admin/disputes", body)
    assert dispute.status_code == 201, dispute.text
    endpoint_id, delivery_id, event_id = webhook_objects(api, Y)
    theirs = Ids(
        Y,
        hold["id"],
        activation["id"],
        refund.json()["id"],
        made.json()["id"],
        deposit_id,
        dispute.json()["id"],
        endpoint_id,
        delivery_id,
        event_id,
    )
    missing = replace(
        Ids("nobody-0a1c", *(str(uuid.uuid4()) for _ in range(6))),
        endpoint_id=str(uuid.uuid4()),
        delivery_id="dlv_987654",
        event_id=f"evt_{uuid.uuid4().hex}",
    )
    before = (api.balance(Y), api.ledger(Y), api.get(f"/v1/accounts/{Y}/payouts").json())
    x_key = api.key(READ_WRITE, account=X)

    def call(route: tuple[str, str], ids: Ids) -> tuple[int, str]:
        path, body = ROUTES[route][0](ids), ROUTES[route][1](ids)
        get = route[0] == "GET"
        response = api.get(path, x_key) if get else api.post(path, body, token=x_key)
        text = response.text
        for value in astuple(ids):
            text = text.replace(value, "<id>") if value else text
        return response.status_code, text

    for route in ROUTES:
        ours = call(route, theirs)
        assert ours[0] in (403, 404), (route, ours)
        assert ours == call(route, missing), route
        # X's own account with Y's activation or deposit: as with ids that do not exist.
        if "activation_id" in route[1] or route[1].startswith("/v1/refunds"):
            assert call(route, replace(theirs, external_id=X)) == call(
                route, replace(missing, external_id=X)
            ), route

    assert (api.balance(Y), api.ledger(Y), api.get(f"/v1/accounts/{Y}/payouts").json()) == before
