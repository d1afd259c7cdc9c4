"""Harness of the preset tests through the HTTP API (tests/policy_api/test_api_preset_*.py).

Everything a customer or an operator does goes over HTTP to the real app: accounts, deposit
addresses, usage batches, activations, account states, refund and withdrawal quotes and
requests. Three things stand in for the outside world, as the deposit flow and the worker see it:

* top-ups: one in-memory `FakeChain` per chain (BTC, ETH, TRON) and one real `Watcher` on it,
  kept for the whole test (a second watcher of a chain would be refused its lease). A top-up is
  a block mined at the current clock time, so its payment time is exactly "now";
* rates: the `static` source at prices the test chooses (`World.prices`), recorded again at each
  move of the clock because a rate is only usable for 300 s;
* the worker: `kassa.worker.sweep_expired_holds` on the same database and manual clock.

`World.app(preset, overrides=…, fees=…)` builds an app with that policy (every app of a test
shares the database, the clock, the chains and the rates). Network fee estimates are pinned
here (`FEES`) so that every figure in the tests is computed by hand from numbers on this page:

    BTC 2 000 sat · ETH 0.0004 ETH · USDT-ERC20 0.0002 ETH · TRX 1 TRX · USDT-TRC20 15 TRX

The clock starts on Friday 20 November 2026, 14:03:11 UTC (the root conftest).

Test modules import `World` and `PolicyApi` under `TYPE_CHECKING` only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient

from kassa.api import create_app
from kassa.apikeys import service as apikeys
from kassa.chains.network import Chain
from kassa.chains.scanning import NATIVE_POSITION, ChainTransfer, SenderKind
from kassa.chains.tron.address import TronAddress
from kassa.clock import ManualClock
from kassa.config import Settings
from kassa.db import Database
from kassa.deposits.fake import FakeChain
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.money import Money, asset
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa.worker import sweep_expired_holds

FEES: dict[str, str] = {
    "BTC": "0.00002",  # 2 000 sat (docs/domain.md §7's worked example)
    "ETH": "0.0004",
    "USDT-ERC20": "0.0002",  # paid in ETH
    "TRX": "1",
    "USDT-TRC20": "15",  # paid in TRX
}

CHAIN_OF = {
    "BTC": Chain.BTC,
    "ETH": Chain.ETH,
    "USDT-ERC20": Chain.ETH,
    "TRX": Chain.TRON,
    "USDT-TRC20": Chain.TRON,
}

SENDER = {
    # Not bcrt1q6rz28…cppk: that is Kassa's own first deposit address, and a refund there is
    # refused (destination_is_deposit_address).
    Chain.BTC: "bcrt1qte09uhj7te09uhj7te09uhj7te09uhj73k46uj",
    Chain.ETH: "0x" + "5e" * 20,
    Chain.TRON: TronAddress.from_bytes(bytes([0x5E]) * 20).text,
}
"""The customer's own wallet on each chain: where top-ups come from."""

PAYEE = {
    Chain.BTC: "bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh",
    Chain.ETH: "0x" + "11" * 20,
    Chain.TRON: TronAddress.from_bytes(bytes([0x11]) * 20).text,
}
"""A wallet outside Kassa a withdrawal is paid to, per chain."""


def _said(response: httpx2.Response) -> str:
    """What an unexpected answer said, short enough to read in a failure."""
    text = response.text
    return f"{response.status_code} {text[:300]}{' …' if len(text) > 300 else ''}"


def _no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the static rate source made a request: {request.url}")


class World:
    """One database and clock, the fake chains with their watchers, and the static rates."""

    def __init__(self, db: Database, clock: ManualClock, stack: ExitStack) -> None:
        self.db = db
        self.clock = clock
        self._stack = stack
        self.rates: dict[Symbol, Decimal] = {
            Symbol.BTC: Decimal("60000"),
            Symbol.ETH: Decimal("3000"),
            Symbol.TRX: Decimal("0.25"),
            Symbol.USDT: Decimal("1"),
        }
        self.chains: dict[Chain, FakeChain] = {}
        self.watchers: dict[Chain, Watcher] = {}
        self.addresses: dict[tuple[str, Chain], str] = {}
        self.record_rates()

    # -- apps -------------------------------------------------------------------------

    def app(
        self,
        preset: str,
        *,
        overrides: dict[str, Any] | None = None,
        fees: dict[str, str] | None = None,
    ) -> PolicyApi:
        """An app deciding with `preset` (plus `overrides`), on this world's database."""
        settings = Settings.model_validate(
            {
                "policy": {"preset": preset, "overrides": overrides or {}},
                "payouts": {
                    "network_fee_estimates": {**FEES, **(fees or {})},
                    # These tests are about the policy: Kassa's own review of payouts to
                    # never-paid addresses (tests/payouts/test_review.py) stays out of them.
                    "review": {"new_destinations": False},
                },
            }
        )
        app = create_app(settings, database=self.db, clock=self.clock)
        client = self._stack.enter_context(TestClient(app))
        return PolicyApi(client, self)

    # -- rates and time ---------------------------------------------------------------

    def record_rates(self) -> None:
        # The static source asks no one; a transport that answers nothing spares building an
        # HTTP client with its TLS context on every refresh.
        pricing = PricingService(
            self.db,
            self.clock,
            PricingSettings(static_rates=self.rates),
            transport=httpx.MockTransport(_no_network),
        )
        result = pricing.refresh(list(self.rates))
        assert not result.missing, result.missing

    def prices(self, **usd_per_coin: str) -> None:
        """Set the market (e.g. ``btc="50000"``) and record every rate at the current time."""
        for name, value in usd_per_coin.items():
            self.rates[Symbol(name.upper())] = Decimal(value)
        self.record_rates()

    def advance(self, delta: timedelta) -> None:
        """Move the clock; the rates (unchanged unless `prices` says so) are recorded again."""
        self.clock.advance(delta)
        self.record_rates()

    def sweep(self) -> int:
        """The worker's hold sweep: expire every hold that is due now."""
        return sweep_expired_holds(self.db, self.clock)

    # -- chains -----------------------------------------------------------------------

    def _chain(self, chain: Chain) -> tuple[FakeChain, Watcher]:
        if chain not in self.chains:
            self.chains[chain] = FakeChain(chain, self.clock.now() - timedelta(hours=1))
            pricing = PricingService(self.db, self.clock, PricingSettings())
            self.watchers[chain] = Watcher(
                self.db, self.clock, self.chains[chain], pricing, WatcherConfig(chain)
            )
        return self.chains[chain], self.watchers[chain]

    def mine_now(self, chain: Chain, transfers: list[ChainTransfer]) -> None:
        """Mine one block timed exactly now (payment time = block time) and let the watcher
        scan and credit it."""
        fake, watcher = self._chain(chain)
        gap = self.clock.now() - fake.blocks[-1].time
        assert gap >= timedelta(0) and not gap.microseconds, gap
        fake.mine(transfers, seconds=int(gap.total_seconds()))
        watcher.tick()

    def reorg(self, chain: Chain, depth: int) -> None:
        """A competing branch without the top `depth` blocks wins (one block longer); the
        watcher rewinds, and reverses what those blocks had credited."""
        fake, watcher = self._chain(chain)
        fake.reorg(depth)
        for _ in range(depth + 1):
            fake.mine([], seconds=0)
        report = watcher.tick()
        assert report.rewound_to is not None, report


class PolicyApi:
    """An admin client of one app, with the steps the preset tests share."""

    SENDER: ClassVar[Mapping[str, str]] = {chain.value: a for chain, a in SENDER.items()}
    PAYEE: ClassVar[Mapping[str, str]] = {chain.value: a for chain, a in PAYEE.items()}

    def __init__(self, client: TestClient, world: World) -> None:
        self.client = client
        self.world = world
        with world.db.transaction() as conn:
            _key, self.admin = apikeys.create_key(
                conn,
                name="test-admin",
                scopes=["admin"],
                customer_account_id=None,
                now=world.clock.now(),
            )

    # -- HTTP -------------------------------------------------------------------------

    def get(self, path: str) -> httpx2.Response:
        response: httpx2.Response = self.client.get(path, headers=self._auth())
        return response

    def post(self, path: str, body: Any = None, *, key: str | None = None) -> httpx2.Response:
        """POST with `key` as Idempotency-Key (a fresh one unless given)."""
        headers = {**self._auth(), "Idempotency-Key": key or str(uuid.uuid4())}
        response: httpx2.Response = self.client.post(path, json=body, headers=headers)
        return response

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin}"}

    @staticmethod
    def ok(response: httpx2.Response, status: int = 200) -> dict[str, Any]:
        assert response.status_code == status, _said(response)
        body: dict[str, Any] = response.json()
        return body

    @staticmethod
    def problem(response: httpx2.Response, status: int, code: str) -> dict[str, Any]:
        """Assert an RFC 9457 problem with our stable code; return its body."""
        assert response.status_code == status, _said(response)
        assert response.headers["content-type"] == "application/problem+json"
        body: dict[str, Any] = response.json()
        assert body["code"] == code, body
        return body

    @staticmethod
    def usd(amount: str) -> dict[str, str]:
        return {"amount": amount, "asset": "USD"}

    # -- accounts and balances --------------------------------------------------------

    def account(self, external_id: str, funds: str | None = None) -> None:
        self.ok(self.post("/v1/accounts", {"external_id": external_id}), 201)
        if funds is not None:
            self.credit(external_id, funds, "test funds")

    def credit(self, external_id: str, amount: str, reason: str) -> None:
        """An operator's balance credit (manual adjustment)."""
        body = {
            "external_id": external_id,
            "direction": "credit",
            "amount": self.usd(amount),
            "reason": reason,
        }
        self.ok(self.post("/v1/admin/adjustments", body), 201)

    def available(self, external_id: str) -> str:
        balance = self.ok(self.get(f"/v1/accounts/{external_id}/balance"))
        return str(balance["available"]["amount"])

    def set_state(
        self, external_id: str, state: str, reason_code: str, reason: str = "operator decision"
    ) -> dict[str, Any]:
        body = {"state": state, "reason_code": reason_code, "reason": reason}
        return self.ok(self.post(f"/v1/admin/accounts/{external_id}/state", body))

    # -- top-ups ----------------------------------------------------------------------

    def top_up(
        self, external_id: str, amount: str, coin: str = "BTC", *, ambiguous: bool = False
    ) -> dict[str, Any]:
        """Pay `amount` of `coin` from the customer's wallet (SENDER) to their deposit address
        in a block mined now; return the credited deposit as the API lists it."""
        chain = CHAIN_OF[coin]
        address = self.deposit_address(external_id, chain)
        txid = uuid.uuid4().hex * 2
        native = coin in ("ETH", "TRX")
        transfer = ChainTransfer(
            chain,
            coin,
            txid,
            NATIVE_POSITION if native else 0,
            address,
            Money.parse(amount, asset(coin)).amount,
            None if ambiguous else SENDER[chain],
            SenderKind.AMBIGUOUS if ambiguous else SenderKind.KNOWN,
            True,
            token_contract=None if native or chain is Chain.BTC else f"{chain}-usdt",
        )
        self.world.mine_now(chain, [transfer])
        credited = self.deposit(external_id, txid)
        assert credited["status"] == "credited", credited
        return credited

    def deposit_address(self, external_id: str, chain: Chain) -> str:
        """The account's static address on `chain` (derived over the API on first use)."""
        known = self.world.addresses.get((external_id, chain))
        if known is None:
            made = self.post(
                f"/v1/accounts/{external_id}/deposit-addresses", {"chain": chain.value}
            )
            known = str(self.ok(made, 201)["address"])
            self.world.addresses[(external_id, chain)] = known
        return known

    def deposit(self, external_id: str, txid: str) -> dict[str, Any]:
        listed = self.ok(self.get(f"/v1/accounts/{external_id}/deposits"))["deposits"]
        [found] = [d for d in listed if d["txid"] == txid]
        return dict(found)

    # -- spending ---------------------------------------------------------------------

    def use(self, external_id: str, *amounts: str) -> dict[str, Any]:
        """One usage batch of metered API calls, one event per amount."""
        events = [
            {
                "event_id": f"call-{uuid.uuid4().hex}",
                "amount": self.usd(a),
                "description": "GET /v1",
            }
            for a in amounts
        ]
        return self.ok(self.post(f"/v1/accounts/{external_id}/usage", {"events": events}))

    def activate(self, external_id: str, price: str, **extra: Any) -> dict[str, Any]:
        body = {"price": self.usd(price), **extra}
        return self.ok(self.post(f"/v1/accounts/{external_id}/activations", body), 201)

    def activation(self, external_id: str, activation_id: str, action: str = "") -> httpx2.Response:
        """GET the activation, or POST `action` (fulfil, cancel) to it."""
        path = f"/v1/accounts/{external_id}/activations/{activation_id}"
        return self.post(f"{path}/{action}") if action else self.get(path)

    # -- refunds and withdrawals ------------------------------------------------------

    def refund_quote(self, external_id: str, deposit_id: str) -> dict[str, Any]:
        """The policy's decision on refunding the top-up now (nothing is stored)."""
        body = {"external_id": external_id, "deposit_id": deposit_id}
        quote = self.ok(self.post("/v1/refunds/quote", body))
        assert quote["allowed"] is quote["decision"]["allowed"]
        decision: dict[str, Any] = quote["decision"]
        return decision

    def refund(
        self, external_id: str, deposit_id: str, *, key: str | None = None
    ) -> httpx2.Response:
        body = {"external_id": external_id, "deposit_id": deposit_id}
        return self.post("/v1/refunds", body, key=key)

    def withdrawal_body(
        self, external_id: str, amount: str, coin: str, address: str | None
    ) -> dict[str, Any]:
        return {
            "external_id": external_id,
            "amount": self.usd(amount),
            "asset": coin,
            "address": address or PAYEE[CHAIN_OF[coin]],
        }

    def withdrawal_quote(
        self, external_id: str, amount: str, coin: str = "BTC", address: str | None = None
    ) -> dict[str, Any]:
        body = self.withdrawal_body(external_id, amount, coin, address)
        quote = self.ok(self.post("/v1/withdrawals/quote", body))
        assert quote["allowed"] is quote["decision"]["allowed"]
        decision: dict[str, Any] = quote["decision"]
        return decision

    def withdraw(
        self, external_id: str, amount: str, coin: str = "BTC", address: str | None = None
    ) -> httpx2.Response:
        return self.post(
            "/v1/withdrawals", self.withdrawal_body(external_id, amount, coin, address)
        )

    # -- reading decisions ------------------------------------------------------------

    @staticmethod
    def refused(decision: dict[str, Any]) -> list[str]:
        """Ids of the rules that failed, in the policy's order."""
        return [r["rule_id"] for r in decision["rules"] if not r["passed"]]

    @staticmethod
    def rule(decision: dict[str, Any], rule_id: str) -> dict[str, Any]:
        [found] = [r for r in decision["rules"] if r["rule_id"] == rule_id]
        return dict(found)

    @staticmethod
    def money(decision: dict[str, Any]) -> dict[str, str | None]:
        """The breakdown with every amount as ``"<decimal> <asset>"`` (None when absent)."""
        flat: dict[str, str | None] = {}
        for name, value in decision["breakdown"].items():
            if isinstance(value, dict):
                flat[name] = f"{value['amount']} {value['asset']}"
            else:
                flat[name] = value
        return flat


@pytest.fixture
def world(db: Database, clock: ManualClock) -> Iterator[World]:
    with ExitStack() as stack:
        yield World(db, clock, stack)
