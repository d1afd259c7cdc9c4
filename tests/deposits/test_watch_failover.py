"""Several nodes per chain (issue 18): the watcher over two endpoints of the real bcoin node,
each behind a fault-injecting proxy (tests/fault_proxy.py).

The primary times out, answers HTTP errors, answers garbage, recovers: every deposit paid
meanwhile arrives through the secondary, the watcher returns to the primary once it answers
well, and each deposit is credited exactly once. A primary stuck at an old tip is left for the
secondary, and a node behind the checkpoint is never read: with no other node answering the
watcher waits (`NoUsableNode`) instead of rewinding credited deposits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from tests.deposits.test_mempool_btc import FAUCET, KEY, NET, pay
from tests.fault_proxy import FaultProxy, Mode, fault_proxy

from kassa.accounts import service as accounts
from kassa.chains.btc.rpc import BtcRpc
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.failover import ChainNode, FailoverScanner, NodeSet, NodeState, NoUsableNode
from kassa.chains.network import Chain
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.derive import HdDeriver
from kassa.deposits.model import DepositStatus
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.ledger.accounts import get_balance
from kassa.money import USD, Money
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devnet.testing import BitcoinNode

# Failover is the chains layer's: one database is enough (the mempool tests run on both).
pytestmark = pytest.mark.parametrize("databases", ["sqlite"], indirect=True)


@dataclass
class World:
    db: Database
    node: BitcoinNode
    nodes: NodeSet
    watcher: Watcher
    primary: FaultProxy
    secondary: FaultProxy
    customer: accounts.CustomerAccount
    address: str

    def mine(self, blocks: int = 1) -> list[str]:
        return self.node.rpc().generate(blocks, FAUCET.text)

    def deposits(self) -> list[records.Deposit]:
        with self.db.transaction() as conn:
            return records.for_account(conn, self.customer.id)

    def usd(self) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, self.customer.ledger_account_id).posted


@pytest.fixture
def world(db: Database, bitcoin_node: BitcoinNode) -> Iterator[World]:
    with (
        fault_proxy(bitcoin_node.url, delay=3.0) as primary,
        fault_proxy(bitcoin_node.url) as secondary,
        BtcRpc(primary.url, bitcoin_node.api_key, timeout=1.0) as rpc0,
        BtcRpc(secondary.url, bitcoin_node.api_key, timeout=1.0) as rpc1,
    ):
        scanners = [BtcScanner(rpc, NET, confirmations=1) for rpc in (rpc0, rpc1)]
        head = scanners[1].head()
        clock = ManualClock(scanners[1].block(head.height, frozenset()).time)
        pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
        pricing.refresh()
        with db.transaction() as conn:
            customer = accounts.create(conn, external_id="failover", now=clock.now(), request=None)
            address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(KEY), clock.now())

        def checkpoint() -> int:
            found = watcher.checkpoint()
            return -1 if found is None else found.height

        nodes = NodeSet(
            Chain.BTC,
            [ChainNode(p.url, s) for p, s in zip((primary, secondary), scanners, strict=True)],
            floor=checkpoint,
            retry_after_seconds=0,
            probe_every_seconds=0,
        )
        watcher = Watcher(
            db,
            clock,
            FailoverScanner(nodes),
            pricing,
            WatcherConfig(Chain.BTC, start_height=head.height + 1),
        )
        yield World(db, bitcoin_node, nodes, watcher, primary, secondary, customer, address.address)


def test_deposits_keep_arriving_across_failovers_and_none_is_credited_twice(world: World) -> None:
    world.watcher.tick()
    modes: tuple[Mode, ...] = ("timeout", "error", "garbage", "pass")
    for number, mode in enumerate(modes, start=1):
        world.primary.mode = mode
        pay(world.node, world.address, number * 10_000)
        world.mine()
        report = world.watcher.tick()
        assert (report.recorded, len(report.credited)) == (1, 1), mode
        primary, secondary = world.nodes.health()
        if mode == "pass":
            assert (world.nodes.active, primary.state) == (0, NodeState.ACTIVE)
            assert secondary.state is NodeState.STANDBY and primary.errors == 0
        else:
            assert (world.nodes.active, primary.state) == (1, NodeState.DOWN), mode
            assert secondary.state is NodeState.ACTIVE and primary.last_error
    deposits = world.deposits()
    assert sorted(d.amount for d in deposits) == [10_000, 20_000, 30_000, 40_000]
    assert {(d.status, d.credit_count) for d in deposits} == {(DepositStatus.CREDITED, 1)}
    assert world.usd() == Money.parse("60", USD)  # 0.001 BTC at 60 000, once
    assert "kassa" not in primary.url and primary.latency_ms is not None


def test_a_stalled_or_lagging_node_is_never_read_backwards(world: World) -> None:
    world.watcher.tick()
    world.primary.freeze("getblockchaininfo")  # the primary is stuck at this tip
    world.watcher.tick()
    pay(world.node, world.address, 50_000)
    world.mine(5)

    world.watcher.tick()  # the primary still looks current; the probe sees the secondary ahead
    report = world.watcher.tick()
    assert (report.scanned, len(report.credited)) == (5, 1)
    assert world.nodes.active == 1
    assert world.nodes.health()[0].state is NodeState.BEHIND

    # Only the stuck primary answers now, below the checkpoint: the watcher waits.
    world.secondary.mode = "error"
    with pytest.raises(NoUsableNode, match="behind the checkpoint"):
        world.watcher.tick()
    [deposit] = world.deposits()
    assert deposit.status is DepositStatus.CREDITED and deposit.credit_count == 1
    assert world.usd() == Money.parse("30", USD)
