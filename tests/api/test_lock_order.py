"""Every pair of money-moving operations on one account, at the same time, on PostgreSQL:
no deadlock, so no 5xx (issue 13, item 4; the lock order is in `kassa.ledger`'s docstring).

The audit found withdrawals and activations on one account deadlocking: the withdrawal's
daily-limit check locked the customer account's row FOR UPDATE and then the balance, the
activation locked the balance and then, inserting its row, the customer account's row for the
foreign key. Here each operation is raced against each other one (and itself) through the real
app and a real PostgreSQL database, a few copies of each side released together; every answer
must be below 500. Refusals (409 and the like) are fine: two requests may compete for one hold.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from kassa.api import create_app
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.config import Settings
from kassa.db import Database
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.payouts.settings import PayoutSettings, ReviewSettings
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    import httpx2
    from tests.api.conftest import Api
    from tests.conftest import DatabaseFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CUSTOMER = "racer"
SENDER = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"
PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"
ROUNDS = 4
COPIES = 2
"""Each round releases COPIES requests of every operation together (22 at once)."""
TOP_UPS = ROUNDS * COPIES
"""Credited BTC top-ups made up front, one per refund the races ask for."""


@dataclass(frozen=True, slots=True)
class Operation:
    """`prepare` makes what the request needs (one at a time); `run` is the raced request."""

    prepare: Callable[[Api, Iterator[str]], str]
    run: Callable[[Api, str], httpx2.Response]


def _nothing(_api: Api, _deposits: Iterator[str]) -> str:
    return ""


def _created(response: httpx2.Response) -> str:
    assert response.status_code == 201, response.text
    made: str = response.json()["id"]
    return made


def _hold(api: Api, _deposits: Iterator[str]) -> str:
    body = {"amount": api.usd("1.00"), "expires_in_seconds": 3600}
    return _created(api.post(f"/v1/accounts/{CUSTOMER}/holds", body))


def _activation(api: Api, _deposits: Iterator[str]) -> str:
    return _created(api.post(f"/v1/accounts/{CUSTOMER}/activations", {"price": api.usd("1.00")}))


def _withdrawal_body(api: Api) -> dict[str, Any]:
    return {"external_id": CUSTOMER, "asset": "BTC", "address": PAYEE, "amount": api.usd("25")}


def _withdrawal(api: Api, _deposits: Iterator[str]) -> str:
    return _created(api.post("/v1/withdrawals", _withdrawal_body(api)))


def _deposit(_api: Api, deposits: Iterator[str]) -> str:
    return next(deposits)


OPERATIONS: dict[str, Operation] = {
    "usage": Operation(
        _nothing,
        lambda api, _: api.post(
            f"/v1/accounts/{CUSTOMER}/usage",
            {
                "events": [
                    {"event_id": str(uuid.uuid4()), "amount": api.usd("0.10"), "description": "x"}
                ]
            },
        ),
    ),
    "hold": Operation(_nothing, lambda api, _: api.post(*_hold_request(api))),
    "capture": Operation(_hold, lambda api, hold: api.post(f"/v1/holds/{hold}/capture", {})),
    "void": Operation(_hold, lambda api, hold: api.post(f"/v1/holds/{hold}/void", {})),
    "reserve": Operation(
        _nothing,
        lambda api, _: api.post(f"/v1/accounts/{CUSTOMER}/activations", {"price": api.usd("1.00")}),
    ),
    "cancel-activation": Operation(
        _activation,
        lambda api, a: api.post(f"/v1/accounts/{CUSTOMER}/activations/{a}/cancel", {}),
    ),
    "fulfil": Operation(
        _activation,
        lambda api, a: api.post(f"/v1/accounts/{CUSTOMER}/activations/{a}/fulfil", {}),
    ),
    "withdraw": Operation(
        _nothing, lambda api, _: api.post("/v1/withdrawals", _withdrawal_body(api))
    ),
    "cancel-withdrawal": Operation(
        _withdrawal, lambda api, w: api.post(f"/v1/withdrawals/{w}/cancel", {})
    ),
    "refund": Operation(
        _deposit,
        lambda api, d: api.post("/v1/refunds", {"external_id": CUSTOMER, "deposit_id": d}),
    ),
    "adjust": Operation(
        _nothing,
        lambda api, _: api.post(
            "/v1/admin/adjustments",
            {
                "external_id": CUSTOMER,
                "direction": "credit",
                "amount": api.usd("1.00"),
                "reason": "race",
            },
        ),
    ),
}


def _hold_request(api: Api) -> tuple[str, dict[str, Any]]:
    return (
        f"/v1/accounts/{CUSTOMER}/holds",
        {"amount": api.usd("1.00"), "expires_in_seconds": 3600},
    )


def _top_ups(api: Api, count: int) -> list[str]:
    """`count` BTC top-ups from SENDER, credited by a real watcher in one block."""
    address = api.post(f"/v1/accounts/{CUSTOMER}/deposit-addresses", {"chain": "btc"}).json()
    chain = FakeChain(Chain.BTC, api.clock.now() - timedelta(minutes=1), final_depth=1)
    chain.mine(
        [
            ChainTransfer(
                Chain.BTC,
                "BTC",
                f"{n:064x}",
                0,
                address["address"],
                100_000,
                SENDER,
                SenderKind.KNOWN,
                True,
            )
            for n in range(1, count + 1)
        ],
        seconds=30,
    )
    pricing = PricingService(api.db, api.clock, PricingSettings(history_tolerance_seconds=3600))
    Watcher(api.db, api.clock, chain, pricing, WatcherConfig(Chain.BTC)).tick()
    listed = api.get(f"/v1/accounts/{CUSTOMER}/deposits", params={"limit": 200}).json()
    ids = [d["id"] for d in listed["deposits"] if d["status"] == "credited"]
    assert len(ids) == count, listed
    return ids


Call = Callable[[], "httpx2.Response"]
RACERS = max(20, len(OPERATIONS) * COPIES)


@pytest.fixture
def db(pg_databases: DatabaseFactory) -> Database:
    """PostgreSQL only: SQLite serialises writers, so it has no lock order to get wrong. A
    connection for each request in flight."""
    return pg_databases.new(pool_size=RACERS)


@pytest.fixture
def racer(api: Api) -> Iterator[Api]:
    """The app with daily payout limits out of the way, and a customer with plenty to spend."""
    limits = ReviewSettings(max_count_per_day=100_000, max_usd_per_day="100000000.00")
    app = create_app(
        Settings(payouts=PayoutSettings(review=limits)), database=api.db, clock=api.clock
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        racer = type(api)(client, api.db, api.clock)
        PricingService(
            api.db, api.clock, PricingSettings(static_rates={Symbol.BTC: Decimal("60000")})
        ).refresh([Symbol.BTC])
        racer.account(CUSTOMER, funds="10000000.00")
        yield racer


def _race(calls: list[Callable[[], httpx2.Response]]) -> list[int]:
    """Run the calls in threads released together; their HTTP statuses."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = [0] * len(calls)

    def run(i: int) -> None:
        barrier.wait(timeout=60)
        try:
            statuses[i] = calls[i]().status_code
        except BaseException:  # what a server error would be, had the client raised it
            statuses[i] = 599
            raise

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racing request hung"
    return statuses


def _prepared(racer: Api, names: list[str], deposits: Iterator[str]) -> list[Call]:
    """Each named operation's request, with what it needs made beforehand."""
    calls: list[Call] = []
    for name in names:
        operation = OPERATIONS[name]
        prepared = operation.prepare(racer, deposits)
        calls.append(functools.partial(operation.run, racer, prepared))
    return calls


def test_withdrawals_and_activations_at_once(racer: Api) -> None:
    """The audit's race: 10 withdrawals and 10 activations on one account."""
    names = ["withdraw", "reserve"] * 10
    statuses = _race(_prepared(racer, names, iter(())))
    assert sorted(statuses) == [201] * 20


def test_every_pair_of_operations_at_once(racer: Api) -> None:
    """Every operation against every other (and itself): all of them released together."""
    deposits = iter(_top_ups(racer, TOP_UPS))
    failed: list[dict[str, int]] = []
    for _round in range(ROUNDS):
        names = list(OPERATIONS) * COPIES
        statuses = _race(_prepared(racer, names, deposits))
        if any(status >= 500 for status in statuses):
            failed.append(dict(zip(names, statuses, strict=True)))
    assert failed == []
