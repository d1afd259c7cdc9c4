"""Mempool deposits on Ethereum, on the real ganache node with its miner paused (issue 18).

A pending ETH payment and a pending USDT ``transfer`` call to a watched address are ``seen``
from ``txpool_content`` before any block; the USDT one is keyed ``txid:0``, the key the block
scan gives its Transfer log, so mining continues the same deposits and credits each once. A
payment replaced by another transaction of the same nonce is ``dropped`` with the replacing
transaction in its reason, and nothing is credited.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from web3 import Web3

from kassa.accounts import service as accounts
from kassa.chains.eth.mempool import EthMempool
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.eth.scanner import EthFinality, EthScanner
from kassa.chains.hd import parse_account_key
from kassa.chains.network import Chain, EthNetwork
from kassa.chains.scanning import NATIVE_POSITION
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.derive import HdDeriver
from kassa.deposits.mempool import MempoolConfig, MempoolTracker
from kassa.deposits.model import DepositStatus
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.events import outbox
from kassa.ledger.accounts import get_balance
from kassa.money import USD, Money
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devkeys import dev_account_xpub
from kassa_dev.devnet import ganache
from kassa_dev.devnet.testing import GanacheNode

# The records are the BTC mempool tests' (both databases); these check the ETH pool: one is
# enough.
pytestmark = pytest.mark.parametrize("databases", ["sqlite"], indirect=True)

NET = EthNetwork(ganache.CHAIN_ID)
KEY = parse_account_key(dev_account_xpub("abandon " * 11 + "about", NET), NET)
PAYER = ganache.dev_account(0).address
GWEI = 10**9


@dataclass
class World:
    db: Database
    node: GanacheNode
    w3: Web3
    watcher: Watcher
    tracker: MempoolTracker
    customer: accounts.CustomerAccount
    address: str

    def rpc(self, method: str, *params: object) -> Any:
        return self.w3.provider.make_request(cast(Any, method), list(params))["result"]

    def pay_eth(
        self, wei: int, *, to: str | None = None, fees: dict[str, int] | None = None
    ) -> str:
        tx = {"from": PAYER, "to": to or self.address, "value": wei, **(fees or {})}
        return "0x" + self.w3.eth.send_transaction(cast(Any, tx)).hex().removeprefix("0x")

    def pay_usdt(self, units: int) -> str:
        usdt = ganache.usdt_contract(self.w3, self.node.usdt_address)
        sent = usdt.functions.transfer(self.address, units).transact({"from": PAYER})
        return "0x" + sent.hex().removeprefix("0x")

    def by_asset(self) -> dict[str, records.Deposit]:
        with self.db.transaction() as conn:
            return {d.asset: d for d in records.for_account(conn, self.customer.id)}

    def usd(self) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, self.customer.ledger_account_id).posted

    def events(self, deposit_id: uuid.UUID) -> list[str]:
        with self.db.transaction() as conn:
            return outbox.types_of(conn, "deposit", deposit_id)


@pytest.fixture
def world(db: Database, ganache_node: GanacheNode) -> Iterator[World]:
    w3 = ganache_node.web3()
    with EthRpc(ganache_node.url) as rpc, EthRpc(ganache_node.url) as pool_rpc:
        scanner = EthScanner(
            rpc,
            usdt_contract=ganache_node.usdt_address,
            confirmations=1,
            finality=EthFinality.CONFIRMATIONS,
        )
        head = scanner.head()
        clock = ManualClock(scanner.block(head.height, frozenset()).time)
        pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
        pricing.refresh()
        with db.transaction() as conn:
            customer = accounts.create(conn, external_id="eth-pool", now=clock.now(), request=None)
            address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(KEY), clock.now())
        watcher = Watcher(
            db, clock, scanner, pricing, WatcherConfig(Chain.ETH, start_height=head.height + 1)
        )
        source = EthMempool(pool_rpc, usdt_contract=ganache_node.usdt_address)
        tracker = MempoolTracker(db, clock, source, MempoolConfig(Chain.ETH, drop_after_seconds=0))
        world = World(db, ganache_node, w3, watcher, tracker, customer, address.address)
        world.rpc("miner_stop")  # the session's node instamines: hold transactions pending
        try:
            yield world
        finally:
            world.rpc("miner_start")


def test_pending_eth_and_usdt_are_seen_then_credited_once_mined(world: World) -> None:
    world.watcher.tick()
    eth_txid = world.pay_eth(10**16)
    usdt_txid = world.pay_usdt(12_000_000)

    report = world.tracker.tick()
    found = world.by_asset()
    eth, usdt = found["ETH"], found["USDT-ERC20"]
    assert sorted(report.seen) == sorted([eth.id, usdt.id])
    assert (eth.txid, eth.position, eth.amount, eth.sender) == (
        eth_txid,
        NATIVE_POSITION,
        10**16,
        PAYER,
    )
    assert (usdt.txid, usdt.position, usdt.amount) == (usdt_txid, 0, 12_000_000)
    assert usdt.token_contract == world.node.usdt_address
    assert {d.status for d in found.values()} == {DepositStatus.SEEN}
    assert {d.block_height for d in found.values()} == {None}
    assert world.tracker.tick().seen == []
    assert world.watcher.tick().credited == []
    assert world.usd() == Money(0, USD)

    world.rpc("evm_mine")
    ticked = world.watcher.tick()
    assert sorted(ticked.credited) == sorted([eth.id, usdt.id])
    assert world.usd() == Money.parse("42", USD)  # 0.01 ETH at 3000 + 12 USDT
    for deposit in (eth, usdt):
        assert world.events(deposit.id) == ["deposit.seen", "deposit.credited"]


def test_a_payment_replaced_by_its_nonce_is_dropped(world: World) -> None:
    nonce = world.w3.eth.get_transaction_count(PAYER, "pending")
    fees = {"nonce": nonce, "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": 2 * GWEI}
    paid = world.pay_eth(10**16, fees=fees)
    world.tracker.tick()
    [seen] = world.by_asset().values()
    assert seen.txid == paid

    elsewhere = ganache.dev_account(5).address
    bumped = {**fees, "maxFeePerGas": 200 * GWEI, "maxPriorityFeePerGas": 20 * GWEI}
    replacement = world.pay_eth(1, to=elsewhere, fees=bumped)
    report = world.tracker.tick()
    [dropped] = world.by_asset().values()
    assert report.dropped == [seen.id] and dropped.status is DepositStatus.DROPPED
    assert dropped.status_reason == (
        f"left the mempool unmined: replaced: nonce {nonce} of {PAYER} is used by "
        f"transaction {replacement}"
    )
    world.rpc("evm_mine")
    world.watcher.tick()
    assert world.by_asset()["ETH"].status is DepositStatus.DROPPED
    assert world.usd() == Money(0, USD)
    assert world.events(seen.id) == ["deposit.seen", "deposit.dropped"]


def test_a_pending_usdt_call_that_reverts_when_mined_is_ignored(world: World) -> None:
    world.watcher.tick()
    usdt = ganache.usdt_contract(world.w3, world.node.usdt_address)
    broke = ganache.dev_account(3).address  # holds no USDT: the call reverts when mined
    sent = usdt.functions.transfer(world.address, 5_000_000).transact(
        {"from": broke, "gas": 100_000}
    )
    world.tracker.tick()
    [seen] = world.by_asset().values()
    assert (seen.status, seen.position) == (DepositStatus.SEEN, 0)

    world.rpc("evm_mine")
    world.watcher.tick()  # the block has no Transfer log for it
    assert world.by_asset()["USDT-ERC20"].status is DepositStatus.SEEN
    report = world.tracker.tick()
    [ignored] = world.by_asset().values()
    assert report.ignored == [seen.id] and ignored.status is DepositStatus.IGNORED
    assert ignored.txid == "0x" + sent.hex().removeprefix("0x")
    assert ignored.status_reason is not None and "failed on chain" in ignored.status_reason
    assert world.usd() == Money(0, USD)
