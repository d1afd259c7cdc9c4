"""Mempool deposits on Bitcoin, on the real bcoin regtest node (issue 18).

A payment is ``seen`` from the node's mempool before any block, with its first-seen time, and
nothing is credited until its block is final; the block scan continues the same deposit. A
transaction that leaves the pool unmined is ``dropped`` with the reason the node gives: its
input spent by another transaction (a double spend), or simply gone (evicted); bcoin forgets a
transaction whose block is invalidated, which is how these tests make it leave. Broadcast and
mined again, a dropped deposit is ``seen`` again and credited once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import coincurve
import pytest

from kassa.accounts import service as accounts
from kassa.chains.btc.address import parse_btc_address
from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.btc.mempool import BtcMempool
from kassa.chains.btc.rpc import BtcRpc
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.btc.tx import (
    Coin,
    OutPoint,
    Transaction,
    TxOut,
    build_transaction,
    estimate_vsize,
    fee_for_vsize,
)
from kassa.chains.hd import parse_account_key
from kassa.chains.network import BtcNetwork, Chain
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
from kassa_dev.devnet import bitcoin as devbtc
from kassa_dev.devnet.testing import BitcoinNode

NET = BtcNetwork.REGTEST
KEY = parse_account_key(dev_account_xpub("abandon " * 11 + "about", NET), NET)
FAUCET_KEY = coincurve.PrivateKey(devbtc.faucet_key().private_key)
FAUCET = p2wpkh_address_for_key(FAUCET_KEY, NET)


def pay(node: BitcoinNode, address: str, amount: int) -> tuple[Transaction, Coin]:
    """A signed faucet payment of `amount` satoshi to `address` (output 0), broadcast; and the
    coin it spends."""
    rpc = node.rpc()
    tip = rpc.height()
    [utxo] = sorted(
        (c for c in rpc.utxos(FAUCET.text) if c.spendable_at(tip) and c.value > 10 * amount),
        key=lambda c: c.height,
    )[:1]
    coin = Coin(OutPoint(utxo.txid, utxo.vout), utxo.value, utxo.script_pubkey)
    return spend(node, coin, parse_btc_address(address, NET).script_pubkey, amount), coin


def spend(node: BitcoinNode, coin: Coin, script: bytes, amount: int) -> Transaction:
    fee = fee_for_vsize(estimate_vsize(1, [script, FAUCET.script_pubkey]), 2_000)
    outputs = [TxOut(amount, script), TxOut(coin.amount - amount - fee, FAUCET.script_pubkey)]
    signed = build_transaction([coin], outputs).sign([FAUCET_KEY])
    assert node.rpc().send_raw_transaction(signed.serialize()) == signed.txid
    return signed


@dataclass
class World:
    db: Database
    node: BitcoinNode
    clock: ManualClock
    watcher: Watcher
    tracker: MempoolTracker
    customer: accounts.CustomerAccount
    address: str

    def mine(self, blocks: int = 1) -> list[str]:
        return self.node.rpc().generate(blocks, FAUCET.text)

    def deposit(self) -> records.Deposit:
        with self.db.transaction() as conn:
            [found] = records.for_account(conn, self.customer.id)
        return found

    def usd(self) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, self.customer.ledger_account_id).posted

    def events(self, deposit_id: uuid.UUID) -> list[str]:
        with self.db.transaction() as conn:
            return outbox.types_of(conn, "deposit", deposit_id)


@pytest.fixture
def world(db: Database, bitcoin_node: BitcoinNode) -> Iterator[World]:
    with BtcRpc(bitcoin_node.url, bitcoin_node.api_key) as rpc:
        scanner = BtcScanner(rpc, NET, confirmations=2)
        head = scanner.head()
        clock = ManualClock(scanner.block(head.height, frozenset()).time)
        pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
        pricing.refresh()
        with db.transaction() as conn:
            customer = accounts.create(conn, external_id="pool-user", now=clock.now(), request=None)
            address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(KEY), clock.now())
        watcher = Watcher(
            db, clock, scanner, pricing, WatcherConfig(Chain.BTC, start_height=head.height + 1)
        )
        with BtcRpc(bitcoin_node.url, bitcoin_node.api_key) as pool_rpc:
            source = BtcMempool(BtcScanner(pool_rpc, NET, confirmations=2))
            tracker = MempoolTracker(
                db, clock, source, MempoolConfig(Chain.BTC, drop_after_seconds=0)
            )
            yield World(db, bitcoin_node, clock, watcher, tracker, customer, address.address)


def test_a_mempool_payment_is_seen_at_once_and_credited_only_when_final(world: World) -> None:
    world.watcher.tick()
    assert world.tracker.tick().seen == []
    tx, _ = pay(world.node, world.address, 100_000)
    world.clock.advance(timedelta(seconds=7))

    report = world.tracker.tick()
    seen = world.deposit()
    assert report.seen == [seen.id]
    assert (seen.status, seen.txid, seen.position, seen.amount) == (
        DepositStatus.SEEN,
        tx.txid,
        0,
        100_000,
    )
    assert (seen.block_height, seen.confirmations, seen.sender) == (None, 0, FAUCET.text)
    assert seen.first_seen_at == world.clock.now()
    assert world.events(seen.id) == ["deposit.seen"]
    assert world.tracker.tick().seen == []  # the same transaction again: one deposit

    assert world.watcher.tick().credited == []  # no block, no credit
    assert world.usd() == Money(0, USD)

    world.mine()
    world.watcher.tick()
    confirming = world.deposit()
    assert (confirming.id, confirming.status) == (seen.id, DepositStatus.CONFIRMING)
    assert confirming.first_seen_at == seen.first_seen_at  # the payment time stays
    world.mine()
    assert world.watcher.tick().credited == [seen.id]
    assert world.usd() == Money.parse("60", USD)
    assert world.tracker.tick().dropped == []
    assert world.events(seen.id) == ["deposit.seen", "deposit.confirming", "deposit.credited"]


def test_a_double_spent_payment_is_dropped_with_the_reason(world: World) -> None:
    tx, coin = pay(world.node, world.address, 200_000)
    world.tracker.tick()
    # bcoin forgets a transaction whose block is invalidated: it leaves the pool unmined...
    [block_hash] = world.mine()
    world.node.rpc().call("invalidateblock", block_hash)
    # ...and its coin is spent elsewhere.
    elsewhere = p2wpkh_address_for_key(coincurve.PrivateKey(), NET)
    spend(world.node, coin, elsewhere.script_pubkey, 150_000)

    report = world.tracker.tick()
    dropped = world.deposit()
    assert report.dropped == [dropped.id] and dropped.status is DepositStatus.DROPPED
    assert dropped.status_reason == (
        f"left the mempool unmined: its input {coin.outpoint.txid}:{coin.outpoint.vout} was "
        "spent by another transaction (replaced by fee, or double-spent)"
    )
    assert world.events(dropped.id) == ["deposit.seen", "deposit.dropped"]
    world.mine(2)
    world.watcher.tick()
    assert world.deposit().status is DepositStatus.DROPPED
    assert world.usd() == Money(0, USD)
    assert tx.txid == dropped.txid


def test_an_evicted_payment_is_dropped_and_seen_again_when_it_returns(world: World) -> None:
    world.watcher.tick()
    tx, _ = pay(world.node, world.address, 300_000)
    world.tracker.tick()
    [block_hash] = world.mine()
    world.node.rpc().call("invalidateblock", block_hash)

    world.tracker.tick()
    dropped = world.deposit()
    assert dropped.status is DepositStatus.DROPPED
    assert dropped.status_reason == (
        "left the mempool unmined: it left the node's mempool unmined (evicted or expired)"
    )

    assert world.node.rpc().send_raw_transaction(tx.serialize()) == tx.txid
    world.tracker.tick()
    assert world.deposit().status is DepositStatus.SEEN
    world.mine(2)
    world.watcher.tick()
    credited = world.deposit()
    assert (credited.id, credited.status) == (dropped.id, DepositStatus.CREDITED)
    assert world.usd() == Money.parse("180", USD)
    assert world.events(dropped.id) == [
        "deposit.seen",
        "deposit.dropped",
        "deposit.seen",
        "deposit.credited",
    ]


def test_only_the_watcher_holding_the_chain_runs_its_tracker(world: World) -> None:
    assert not world.watcher.holds_lease()  # no tick yet: nobody holds the chain
    world.watcher.tick()
    assert world.watcher.holds_lease()
    world.watcher.release()
    assert not world.watcher.holds_lease()
