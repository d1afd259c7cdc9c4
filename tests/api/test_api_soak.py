"""Issue 13: eight clients for 30 seconds against one PostgreSQL, issuing random money
operations on three shared accounts — usage, holds, captures, voids, activations and their
cancels and fulfilments, withdrawals and refunds and their cancels — each under a fresh
Idempotency-Key, with a one-in-ten chance of re-sending an earlier request under its key.

Expected: no 5xx at all; every re-sent request answered exactly as the first time (status and
body); and at the end the books hold (`kassa.ledger.checks`: every key has its outcome, the
postings balance, stored sums agree with postings and open holds).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from kassa.api import create_app
from kassa.apikeys import service as apikeys
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.ledger import checks
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings

if TYPE_CHECKING:
    import httpx2
    from tests.conftest import DatabaseFactory

# Not traced by coverage (pytest-cov's `no_cover`): a load test: the routes it drives are measured
# by the API tests; tracing it cost CPU the whole suite shares.
pytestmark = [pytest.mark.no_cover, pytest.mark.postgres, pytest.mark.slow(seconds=31)]

SECONDS = 30.0
CLIENTS = 8
ACCOUNTS = ("soak-a", "soak-b", "soak-c")
PAYEE = "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh"
SENDER = "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj"


@dataclass
class Shared:
    """What the clients made so far, for the operations that act on an earlier object."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    holds: list[str] = field(default_factory=list)
    activations: list[tuple[str, str]] = field(default_factory=list)
    withdrawals: list[str] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)
    deposits: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, value: Any) -> None:
        with self.lock:
            getattr(self, kind).append(value)

    def pick(self, rng: random.Random, kind: str) -> Any:
        with self.lock:
            items = getattr(self, kind)
            return rng.choice(items) if items else None


class Client:
    def __init__(self, client: TestClient, token: str, shared: Shared, seed: int) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.shared = shared
        self.rng = random.Random(seed)  # noqa: S311 (reproducible choices, not secrets)
        self.sent: list[tuple[str, Any, str, httpx2.Response]] = []
        self.statuses: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.mismatches: list[str] = []
        self.server_errors: list[str] = []

    def post(self, path: str, body: Any, key: str | None = None) -> httpx2.Response:
        key = key or f"soak-{uuid.uuid4()}"
        response = self.client.post(
            path, json=body, headers={**self.headers, "Idempotency-Key": key}
        )
        self.statuses[response.status_code] += 1
        if response.status_code >= 400:
            self.codes[response.json().get("code", "?")] += 1
        if response.status_code >= 500:
            self.server_errors.append(f"{path}: {response.text}")
        return response

    def usd(self, low: int, high: int) -> dict[str, str]:
        cents = self.rng.randint(max(low * 100, 1), high * 100)
        return {"amount": f"{cents // 100}.{cents % 100:02d}", "asset": "USD"}

    def operation(self) -> tuple[str, Any, str | None] | None:
        """A random operation: (path, body, what to remember the result as)."""
        account = self.rng.choice(ACCOUNTS)
        kind = self.rng.choice(
            ["usage", "hold", "capture", "void", "activate", "activation_end", "withdraw",
             "withdrawal_cancel", "refund", "refund_cancel"]
        )  # fmt: skip
        if kind == "usage":
            event = {"event_id": f"e-{uuid.uuid4()}", "amount": self.usd(0, 2), "description": "x"}
            return f"/v1/accounts/{account}/usage", {"events": [event]}, None
        if kind == "hold":
            return f"/v1/accounts/{account}/holds", {"amount": self.usd(1, 30)}, "holds"
        if kind in ("capture", "void"):
            hold = self.shared.pick(self.rng, "holds")
            return None if hold is None else (f"/v1/holds/{hold}/{kind}", None, None)
        if kind == "activate":
            body = {"price": self.usd(1, 20)}
            return f"/v1/accounts/{account}/activations", body, "activations"
        if kind == "activation_end":
            picked = self.shared.pick(self.rng, "activations")
            if picked is None:
                return None
            end = self.rng.choice(["cancel", "fulfil"])
            return f"/v1/accounts/{picked[0]}/activations/{picked[1]}/{end}", None, None
        if kind == "withdraw":
            withdrawal: dict[str, Any] = {
                "external_id": account,
                "asset": "BTC",
                "address": PAYEE,
                "amount": self.usd(20, 60),
            }
            return "/v1/withdrawals", withdrawal, "withdrawals"
        if kind == "refund":
            deposit = self.rng.choice(self.shared.deposits[account])
            return "/v1/refunds", {"external_id": account, "deposit_id": deposit}, "refunds"
        kinds = "withdrawals" if kind == "withdrawal_cancel" else "refunds"
        request = self.shared.pick(self.rng, kinds)
        return None if request is None else (f"/v1/{kinds}/{request}/cancel", {}, None)

    def run(self, until: float) -> None:
        while time.monotonic() < until:
            if self.sent and self.rng.random() < 0.1:
                path, body, key, first = self.rng.choice(self.sent)
                again = self.post(path, body, key)
                if (again.status_code, again.content) != (first.status_code, first.content):
                    self.mismatches.append(f"{path} {key}: {first.text} then {again.text}")
                continue
            chosen = self.operation()
            if chosen is None:
                continue
            path, body, remember = chosen
            key = f"soak-{uuid.uuid4()}"
            response = self.post(path, body, key)
            self.sent.append((path, body, key, response))
            if remember and response.status_code == 201:
                made = response.json()["id"]
                value = (path.split("/")[3], made) if remember == "activations" else made
                self.shared.add(remember, value)


def _top_ups(db: Any, clock: ManualClock, deposit_addresses: dict[str, str]) -> None:
    """Three credited BTC top-ups per account, each refundable once (from SENDER)."""
    chain = FakeChain(Chain.BTC, clock.now() - timedelta(minutes=5), final_depth=1)
    transfers = [
        ChainTransfer(
            Chain.BTC, "BTC", f"{i:02x}" * 32, 0, address, 200_000, SENDER, SenderKind.KNOWN, True
        )
        for i, address in enumerate(a for a in deposit_addresses.values() for _ in range(3))
    ]
    chain.mine(transfers, seconds=30)
    pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
    Watcher(db, clock, chain, pricing, WatcherConfig(Chain.BTC)).tick()


def test_eight_clients_for_thirty_seconds(pg_databases: DatabaseFactory) -> None:
    db = pg_databases.new(pool_size=12)
    clock = ManualClock(datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC))
    PricingService(db, clock, PricingSettings(static_rates={Symbol.BTC: Decimal("50000")})).refresh(
        [Symbol.BTC]
    )
    with db.transaction() as conn:
        _key, token = apikeys.create_key(
            conn, name="soak", scopes=["admin"], customer_account_id=None, now=clock.now()
        )
    with TestClient(
        create_app(Settings(), database=db, clock=clock), raise_server_exceptions=False
    ) as http:
        shared = Shared()
        setup = Client(http, token, shared, seed=-1)
        addresses = {}
        for account in ACCOUNTS:
            assert setup.post("/v1/accounts", {"external_id": account}).status_code == 201
            credit = {"external_id": account, "direction": "credit", "reason": "soak"}
            amount = {"amount": "5000", "asset": "USD"}
            assert setup.post("/v1/admin/adjustments", {**credit, "amount": amount}).is_success
            made = setup.post(f"/v1/accounts/{account}/deposit-addresses", {"chain": "btc"})
            addresses[account] = made.json()["address"]
        _top_ups(db, clock, addresses)
        for account in ACCOUNTS:
            listed = http.get(f"/v1/accounts/{account}/deposits", headers=setup.headers)
            deposits = listed.json()["deposits"]
            shared.deposits[account] = [d["id"] for d in deposits if d["status"] == "credited"]
            assert len(shared.deposits[account]) == 3
        clients = [Client(http, token, shared, seed) for seed in range(CLIENTS)]
        until = time.monotonic() + SECONDS
        threads = [threading.Thread(target=c.run, args=(until,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=SECONDS + 120)

    statuses = sum((c.statuses for c in clients), Counter())
    codes = sum((c.codes for c in clients), Counter())
    print(f"\nsoak: {sum(statuses.values())} requests, by status {dict(sorted(statuses.items()))}")
    print(f"soak: refusals by code {dict(codes.most_common())}")
    assert [e for c in clients for e in c.server_errors] == []
    assert [m for c in clients for m in c.mismatches] == []
    assert statuses[201] > 50 and statuses[200] > 20, statuses  # it really moved money
    with db.transaction() as conn:
        assert checks.everything(conn) == []
