"""Harness of the payout tests on the real local chains (ganache, bcoin regtest, the TRON
simulator): the real worker, rails, signer, ledger, policy and watchers.

A `Stage` is one chain: a fresh random hot-wallet key funded by the devnet faucet with real
transactions, the rail built from settings exactly as `kassa up` builds it, a worker, and
customers whose balances come from operator credits (withdrawals) or real top-ups credited by
the real deposit watcher (refunds). Rates are the static source's (BTC 60 000, ETH 3 000,
TRX 0.25, USDT 1 USD), recorded at the stage's clock, which starts at the wall-clock time so
block times and rate times agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import coincurve
import pytest
from sqlalchemy import select

from kassa.accounts import service as accounts
from kassa.accounts.service import CustomerAccount
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.network import Chain
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.model import DepositStatus
from kassa.deposits.runtime import build_scanner, derivers, dust_thresholds
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.ledger.accounts import get_balance
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.tables import ledger_account
from kassa.ledger.transfers import adjust
from kassa.money import USD, Asset, Money, asset
from kassa.payouts.model import RequestStatus
from kassa.payouts.requests import PayoutRequest, Payouts
from kassa.payouts.runtime import build_rail
from kassa.payouts.settings import PayoutSettings
from kassa.payouts.signer import LocalKeySigner
from kassa.payouts.store import get
from kassa.payouts.tables import payout_tx
from kassa.payouts.worker import PayoutWorker
from kassa.policy.settings import PolicySettings
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.bench._payouts_run import chains_settings_for, close_client, fresh_address
from kassa_dev.devnet import tron_node
from kassa_dev.devnet.testing import BitcoinNode, GanacheNode, TronNode

HOT_FUNDING = {
    Chain.BTC: {"BTC": "2"},
    Chain.ETH: {"ETH": "10", "USDT-ERC20": "10000"},
    Chain.TRON: {"TRX": "10000", "USDT-TRC20": "10000"},
}


class Stage:
    """One chain with its node, a funded hot wallet, a worker and the services around it."""

    def __init__(
        self,
        db: Database,
        chain: Chain,
        node: GanacheNode | BitcoinNode | TronNode,
        *,
        payout_overrides: dict[str, Any] | None = None,
        key: coincurve.PrivateKey | None = None,
    ) -> None:
        self.db = db
        self.chain = chain
        self.node = node
        self.clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        self.pricing = PricingService(
            db, self.clock, PricingSettings(history_tolerance_seconds=3600)
        )
        self.record_rates()
        self.chains = chains_settings_for(node)
        self.settings = PayoutSettings.model_validate(
            {"review": {"new_destinations": False}, **(payout_overrides or {})}
        )
        self.key = key or coincurve.PrivateKey()
        self.signer = LocalKeySigner({chain: self.key})
        self.rail = build_rail(self.chains, self.settings, self.signer, chain)
        self.payouts = Payouts(
            database=db,
            clock=self.clock,
            pricing=self.pricing,
            policy=PolicySettings().load(),
            settings=self.settings,
            chains=self.chains,
        )

    # -- the outside world ---------------------------------------------------------------

    def record_rates(self) -> None:
        result = self.pricing.refresh()
        assert not result.missing, result.missing

    def faucet_fund(self, address: str, amount: Money) -> str:
        return self.node.faucet().fund(address, amount)

    def fund_hot(self) -> None:
        for code, text in HOT_FUNDING[self.chain].items():
            self.faucet_fund(self.rail.hot_address(), Money.parse(text, asset(code)))
        self.mine(2)

    def mine(self, blocks: int = 1) -> None:
        if isinstance(self.node, GanacheNode):
            with EthRpc(self.node.url) as eth:
                for _ in range(blocks):
                    eth.call("evm_mine")
        elif isinstance(self.node, BitcoinNode):
            self.node.rpc().generate(blocks, self.node.faucet_key.address)
        else:
            tron_node.mine(self.node.url, blocks)

    def received(self, destination: str, coin: Asset, txid: str | None = None) -> int:
        """What ``destination`` holds (ETH, TRON) or got from ``txid`` (BTC), minor units."""
        if isinstance(self.node, GanacheNode):
            with EthRpc(self.node.url) as rpc:
                if coin.code.value == "ETH":
                    return rpc.get_balance(destination)
                holder = destination.lower().removeprefix("0x").rjust(64, "0")
                answer = rpc.call_contract(
                    {"to": self.node.usdt_address, "data": "0x70a08231" + holder}
                )
                return int.from_bytes(answer, "big")
        if isinstance(self.node, BitcoinNode):
            assert txid is not None
            tx = self.node.rpc().call("getrawtransaction", txid, True)
            total = 0
            for out in tx["vout"]:
                script = out["scriptPubKey"]
                paid_to = script.get("address") or (script.get("addresses") or [None])[0]
                if paid_to == destination:
                    total += int(Decimal(str(out["value"])) * 100_000_000)
            return total
        return _tron_balance(self.node, destination, coin)

    def close(self) -> None:
        close_client(self.rail)

    def fresh_address(self) -> str:
        return fresh_address(self.chain)

    # -- customers -------------------------------------------------------------------------

    def customer(self, funds: str | None = "100.00") -> CustomerAccount:
        with self.db.transaction() as conn:
            now = self.clock.now(conn)
            account = accounts.create(
                conn, external_id=f"c-{uuid.uuid4().hex[:10]}", now=now, request=None
            )
            if funds is not None:
                adjust(
                    conn,
                    account_id=account.ledger_account_id,
                    amount=Money.parse(funds, USD),
                    direction="credit",
                    reason="test funds",
                    actor="test",
                    now=now,
                    request=None,
                )
            return account

    def top_up(self, account: CustomerAccount, amount: Money) -> records.Deposit:
        """Pay ``amount`` from the faucet to the customer's deposit address; the real watcher
        credits it once final."""
        # The session's chain is shared and deposit addresses come from the well-known devnet
        # mnemonic, so earlier tests paid this address too: watch from the tip only.
        scanner = build_scanner(self.chains, self.chain)
        head = scanner.head().height
        watcher = Watcher(
            self.db,
            self.clock,
            scanner,
            self.pricing,
            WatcherConfig(
                self.chain, dust=dust_thresholds(self.chains, self.chain), start_height=head + 1
            ),
        )
        deriver = derivers(self.chains)[self.chain]
        with self.db.transaction() as conn:
            address, _ = addresses.get_or_create(conn, account.id, deriver, self.clock.now(conn))
        self.faucet_fund(address.address, amount)
        try:
            for _ in range(40):
                self.mine(1)
                watcher.tick()
                with self.db.transaction() as conn:
                    found = [
                        d
                        for d in records.for_account(conn, account.id)
                        if d.status is DepositStatus.CREDITED and d.money == amount
                    ]
                if found:
                    return found[0]
        finally:
            close_client(watcher.scanner)
        raise AssertionError("the top-up was not credited")

    def withdraw(self, account: CustomerAccount, usd: str, coin: str, to: str) -> PayoutRequest:
        return self.payouts.request_withdrawal(
            account,
            Money.parse(usd, USD),
            asset(coin),
            to,
            request=_request("withdraw"),
            actor="test",
        )

    def refund(self, account: CustomerAccount, deposit: records.Deposit) -> PayoutRequest:
        return self.payouts.request_refund(
            account, deposit.id, request=_request("refund"), actor="test"
        )

    # -- the worker ------------------------------------------------------------------------

    def worker(self, name: str = "w1") -> PayoutWorker:
        return PayoutWorker(
            self.db,
            self.clock,
            self.pricing,
            self.settings,
            {self.chain: self.rail},
            worker_id=f"payout-worker:{name}",
            crash_at=None,
        )

    def pay(self, worker: PayoutWorker, *ids: uuid.UUID, rounds: int = 40) -> None:
        """Run rounds, mining between them, until every request is confirmed or failed."""
        for _ in range(rounds):
            worker.run_once()
            if all(self.status(i) in (RequestStatus.CONFIRMED, RequestStatus.FAILED) for i in ids):
                return
            self.mine(1)
        raise AssertionError({str(i): self.status(i).value for i in ids})

    def status(self, request_id: uuid.UUID) -> RequestStatus:
        return self.request(request_id).status

    def request(self, request_id: uuid.UUID) -> PayoutRequest:
        with self.db.transaction() as conn:
            return get(conn, request_id)

    def txs(self) -> list[Any]:
        with self.db.transaction() as conn:
            return list(conn.execute(select(payout_tx).order_by(payout_tx.c.created_at)).all())

    def available(self, account: CustomerAccount) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, account.ledger_account_id).available

    def account_balance(self, code: str) -> int:
        with self.db.transaction() as conn:
            row = conn.execute(
                select(ledger_account.c.id).where(ledger_account.c.code == code)
            ).first()
            return 0 if row is None else get_balance(conn, row.id).posted.amount


def _request(operation: str) -> Request:
    return Request.of(IdempotencyKey("test", uuid.uuid4().hex), f"payouts.{operation}", {})


def _tron_balance(node: TronNode, address: str, coin: Asset) -> int:
    from kassa.chains.tron.address import parse_tron_address
    from kassa.chains.tron.api import TronApi

    holder = parse_tron_address(address)
    with TronApi(node.url) as api:
        if coin.code.value == "TRX":
            account = api.account(holder)
            return 0 if account is None else account.balance
        return api.trc20_balance(parse_tron_address(node.usdt_contract), holder)


@pytest.fixture
def make_stage() -> Iterator[Callable[..., Stage]]:
    """Build (and fund) stages with other settings; closed at the end of the test."""
    made: list[Stage] = []

    def make(db: Database, chain: Chain, node: Any, **options: Any) -> Stage:
        stage = Stage(db, chain, node, **options)
        made.append(stage)
        stage.fund_hot()
        return stage

    yield make
    for stage in made:
        stage.close()


@pytest.fixture
def eth_stage(db: Database, ganache_node: GanacheNode) -> Iterator[Stage]:
    stage = Stage(db, Chain.ETH, ganache_node)
    stage.fund_hot()
    yield stage
    stage.close()


@pytest.fixture
def btc_stage(db: Database, bitcoin_node: BitcoinNode) -> Iterator[Stage]:
    stage = Stage(db, Chain.BTC, bitcoin_node)
    stage.fund_hot()
    yield stage
    stage.close()


@pytest.fixture
def tron_stage(db: Database, tron_sim: TronNode) -> Iterator[Stage]:
    stage = Stage(db, Chain.TRON, tron_sim)
    stage.fund_hot()
    yield stage
    stage.close()
