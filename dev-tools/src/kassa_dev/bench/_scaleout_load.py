"""The mixed load of `kassa bench scaleout`, sent through the API processes like a host service
would: accounts and their deposit addresses, faucet deposits on the three chains, usage,
activations, withdrawals and their approval by an operator key.

Every POST carries an Idempotency-Key, and a request whose API process died under it (refused,
reset, no answer) is sent again with the same key to the other API process: that is how a
client behind a load balancer survives a replica's death, and it is part of what the run
checks (nothing happens twice). Answers are counted by class; `ApiStats.refused` counts the
attempts that found an API process dead.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import httpx

from kassa.chains.network import Chain
from kassa.money import Money, asset
from kassa_dev.bench._payouts_run import fresh_address
from kassa_dev.devnet.faucet import Faucet

DEPOSITS: tuple[tuple[Chain, str, str], ...] = (
    (Chain.BTC, "BTC", "0.001"),
    (Chain.ETH, "ETH", "0.02"),
    (Chain.TRON, "USDT-TRC20", "60"),
    (Chain.ETH, "USDT-ERC20", "60"),
    (Chain.TRON, "TRX", "200"),
)
"""What the faucet sends, in turn: about $50–60 each at the static rates."""

PAYOUT_ASSETS = ("BTC", "USDT-TRC20", "ETH", "USDT-ERC20")
WITHDRAWAL_USD = Decimal("21.00")
"""Above the default policy's $20 minimum."""
WITHDRAW_ABOVE_USD = Decimal("30")
ATTEMPTS = 40
RETRY_PAUSE_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class SentDeposit:
    chain: Chain
    asset: str
    address: str
    amount: int
    """Minor units."""
    txid: str | None
    """None while the faucet's call has not returned (the transfer may be on chain already)."""


@dataclass(slots=True)
class ApiStats:
    answers: Counter[str] = field(default_factory=Counter)
    """Answers by class: 2xx, 4xx (refusals, e.g. not enough balance), 5xx."""
    refused: int = 0
    gave_up: int = 0

    @property
    def answered(self) -> int:
        return sum(self.answers.values())


class Api:
    """The API processes, round robin; a dead one's requests go to the next."""

    def __init__(self, ports: list[int], token: str, stats: ApiStats) -> None:
        self._clients = [
            httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=15,
            )
            for port in ports
        ]
        self._next = 0
        self.stats = stats

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, key: str | None = None
    ) -> httpx.Response | None:
        headers = {} if key is None else {"Idempotency-Key": key}
        for _ in range(ATTEMPTS):
            client = self._clients[self._next % len(self._clients)]
            self._next += 1
            try:
                answer = client.request(method, path, json=body, headers=headers)
            except httpx.TransportError:
                self.stats.refused += 1
                time.sleep(RETRY_PAUSE_SECONDS / len(self._clients))
                continue
            self.stats.answers[f"{answer.status_code // 100}xx"] += 1
            return answer
        self.stats.gave_up += 1
        return None


@dataclass
class Load:
    """The load thread's state: what it sent, requested and approved."""

    api: Api
    faucets: dict[Chain, Faucet]
    accounts: int
    deposit_every: float
    rng: random.Random
    deposits: list[SentDeposit] = field(default_factory=list)
    withdrawals: dict[str, str] = field(default_factory=dict)
    """Withdrawal id → its last known status."""
    usage_events: int = 0
    activations: int = 0
    errors: list[str] = field(default_factory=list)
    addresses: dict[tuple[str, Chain], str] = field(default_factory=dict)
    refusals: Counter[str] = field(default_factory=Counter)
    """4xx answers by route tail (e.g. a withdrawal racing a spend for the same balance)."""

    def open_accounts(self) -> None:
        """The customer accounts and a deposit address on each chain (the run cannot go on
        without them)."""
        for n in range(self.accounts):
            external = f"scale-{n}"
            if self._post("/v1/accounts", {"external_id": external}, f"acc-{external}") is None:
                raise RuntimeError(f"could not open account {external}: {self.errors[-1:]}")
            for chain in Chain:
                answer = self._post(
                    f"/v1/accounts/{external}/deposit-addresses",
                    {"chain": chain.value},
                    f"addr-{external}-{chain.value}",
                )
                if answer is None:
                    raise RuntimeError(f"no {chain} address for {external}: {self.errors[-1:]}")
                self.addresses[external, chain] = str(answer["address"])

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: a deposit every `deposit_every` seconds, and in between usage,
        activations, withdrawals and approvals."""
        turn = 0
        next_deposit = time.monotonic()
        while not stop.is_set():
            steps: list[Callable[[], object]] = [self._spend, self.approve]
            if time.monotonic() >= next_deposit:
                steps.insert(0, partial(self._deposit, turn))
                turn += 1
                next_deposit += self.deposit_every
            for step in steps:
                try:
                    step()
                except Exception as error:  # recorded for the report; the load goes on
                    self.errors.append(f"{type(error).__name__}: {error}")
            stop.wait(0.2)

    def _deposit(self, turn: int) -> None:
        chain, code, amount = DEPOSITS[turn % len(DEPOSITS)]
        external = f"scale-{(turn // len(DEPOSITS) + turn) % self.accounts}"
        address = self.addresses[external, chain]
        money = Money.parse(amount, asset(code))
        # Recorded before the call: a call that fails or never returns may still have paid.
        self.deposits.append(SentDeposit(chain, code, address, money.amount, None))
        txid = self.faucets[chain].fund(address, money)
        self.deposits[-1] = SentDeposit(chain, code, address, money.amount, txid)

    def _spend(self) -> None:
        external = f"scale-{self.rng.randrange(self.accounts)}"
        answer = self.api.call("GET", f"/v1/accounts/{external}/balance")
        if answer is None or answer.status_code != 200:
            return
        available = Decimal(answer.json()["available"]["amount"])
        if available >= WITHDRAW_ABOVE_USD:
            self._withdraw(external)
        elif available >= 1:
            self._use(external)

    def _withdraw(self, external: str) -> None:
        coin = PAYOUT_ASSETS[len(self.withdrawals) % len(PAYOUT_ASSETS)]
        chain = {"BTC": Chain.BTC, "ETH": Chain.ETH, "USDT-ERC20": Chain.ETH}.get(coin, Chain.TRON)
        body = {
            "external_id": external,
            "amount": {"amount": str(WITHDRAWAL_USD), "asset": "USD"},
            "asset": coin,
            "address": fresh_address(chain),
        }
        made = self._post("/v1/withdrawals", body, f"w-{uuid.uuid4().hex}")
        if made is not None:
            self.withdrawals[str(made["id"])] = str(made["status"])

    def _use(self, external: str) -> None:
        event = uuid.uuid4().hex
        used = self._post(
            f"/v1/accounts/{external}/usage",
            {
                "events": [
                    {
                        "event_id": event,
                        "amount": {"amount": "0.10", "asset": "USD"},
                        "description": "scale-out usage",
                    }
                ]
            },
            f"use-{event}",
        )
        self.usage_events += used is not None
        held = self._post(
            f"/v1/accounts/{external}/activations",
            {"price": {"amount": "0.50", "asset": "USD"}},
            f"act-{event}",
        )
        if held is None:
            return
        self.activations += 1
        ending = "fulfil" if self.activations % 2 else "cancel"
        self._post(f"/v1/accounts/{external}/activations/{held['id']}/{ending}", {}, f"end-{event}")

    def approve(self) -> None:
        """An operator approves every withdrawal that waits for review (new destinations)."""
        for payout_id, status in list(self.withdrawals.items()):
            if status != "pending_review":
                continue
            answer = self.api.call(
                "POST",
                f"/v1/admin/payouts/{payout_id}/approve",
                {"note": "scale-out run"},
                key=f"approve-{payout_id}",
            )
            if answer is not None and answer.status_code in (200, 201):
                self.withdrawals[payout_id] = str(answer.json()["status"])
            elif answer is not None and answer.status_code == 409:
                self.withdrawals[payout_id] = "approved"

    def _post(self, path: str, body: dict[str, Any], key: str) -> dict[str, Any] | None:
        answer = self.api.call("POST", path, body, key=key)
        if answer is None:
            self.errors.append(f"POST {path}: no API process answered")
            return None
        if answer.status_code >= 500:
            self.errors.append(f"POST {path}: {answer.status_code} {answer.text[:300]}")
        if answer.status_code >= 300:
            self.refusals[f"POST {path.split('/')[-1] if '/' in path else path}"] += 1
            return None
        result: dict[str, Any] = answer.json()
        return result
