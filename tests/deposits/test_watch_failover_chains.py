"""Failover on ETH and TRON (issue 18): the watcher over two endpoints of the real ganache /
TRON simulator, each behind the fault-injecting proxy (tests/fault_proxy.py). While the primary
times out, then answers garbage, deposits arrive through the secondary; once it recovers the
watcher reads it again; every deposit is credited exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime

import httpx
import pytest
from tests.fault_proxy import FaultProxy, Mode, fault_proxy

from kassa.accounts import service as accounts
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.eth.scanner import EthFinality, EthScanner
from kassa.chains.failover import ChainNode, FailoverScanner, NodeSet, NodeState
from kassa.chains.hd import parse_account_key
from kassa.chains.network import Chain, EthNetwork, Network, TronNetwork
from kassa.chains.scanning import ChainScanner
from kassa.chains.tron.api import TronApi
from kassa.chains.tron.scanner import TronScanner
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.derive import HdDeriver
from kassa.deposits.model import DepositStatus
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.money import ETH, TRX, Money
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devkeys import dev_account_xpub
from kassa_dev.devnet import ganache
from kassa_dev.devnet.testing import GanacheNode, TronNode

# Failover is the chains layer's: one database is enough (the BTC failover and mempool
# tests run on both).
pytestmark = pytest.mark.parametrize("databases", ["sqlite"], indirect=True)

MNEMONIC = "abandon " * 11 + "about"


def _watch(
    db: Database,
    chain: Chain,
    network: Network,
    proxies: tuple[FaultProxy, FaultProxy],
    scanner_at: Callable[[str], ChainScanner],
) -> tuple[Watcher, NodeSet, ManualClock, str, accounts.CustomerAccount]:
    scanners = [scanner_at(p.url) for p in proxies]
    head = scanners[1].head()
    clock = ManualClock(scanners[1].block(head.height, frozenset()).time)
    pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
    pricing.refresh()
    key = parse_account_key(dev_account_xpub(MNEMONIC, network), network)
    with db.transaction() as conn:
        customer = accounts.create(conn, external_id="nodes", now=clock.now(), request=None)
        address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(key), clock.now())

    def checkpoint() -> int:
        found = watcher.checkpoint()
        return -1 if found is None else found.height

    nodes = NodeSet(
        chain,
        [ChainNode(p.url, s) for p, s in zip(proxies, scanners, strict=True)],
        floor=checkpoint,
        retry_after_seconds=0,
        probe_every_seconds=0,
    )
    config = WatcherConfig(chain, start_height=head.height + 1)
    watcher = Watcher(db, clock, FailoverScanner(nodes), pricing, config)
    return watcher, nodes, clock, address.address, customer


def _across_failovers(
    db: Database,
    watcher: Watcher,
    nodes: NodeSet,
    primary: FaultProxy,
    customer: accounts.CustomerAccount,
    pay: Callable[[int], str],
    settle: Callable[[], None],
) -> None:
    watcher.tick()
    paid = []
    modes: tuple[Mode, ...] = ("timeout", "garbage", "pass")
    for number, mode in enumerate(modes, start=1):
        primary.mode = mode
        paid.append(pay(number))
        report = watcher.tick()
        assert report.recorded >= 1, mode
        assert nodes.active == (0 if mode == "pass" else 1), mode
        assert nodes.health()[0].state is (NodeState.ACTIVE if mode == "pass" else NodeState.DOWN)
    settle()
    watcher.tick()
    with db.transaction() as conn:
        deposits = records.for_account(conn, customer.id)
    assert sorted(d.txid for d in deposits) == sorted(paid)
    assert {(d.status, d.credit_count) for d in deposits} == {(DepositStatus.CREDITED, 1)}


@pytest.fixture
def eth_proxies(ganache_node: GanacheNode) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    with fault_proxy(ganache_node.url, delay=3.0) as a, fault_proxy(ganache_node.url) as b:
        yield a, b


@pytest.fixture
def tron_proxies(tron_sim: TronNode) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    with fault_proxy(tron_sim.url, delay=3.0) as a, fault_proxy(tron_sim.url) as b:
        yield a, b


def test_eth_deposits_keep_arriving_across_failovers(
    db: Database, ganache_node: GanacheNode, eth_proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    with ExitStack() as stack:

        def scanner_at(url: str) -> ChainScanner:
            rpc = stack.enter_context(EthRpc(url, timeout=1.0))
            return EthScanner(
                rpc,
                usdt_contract=ganache_node.usdt_address,
                confirmations=1,
                finality=EthFinality.CONFIRMATIONS,
            )

        watcher, nodes, _clock, address, customer = _watch(
            db, Chain.ETH, EthNetwork(ganache.CHAIN_ID), eth_proxies, scanner_at
        )
        faucet = ganache_node.faucet()
        _across_failovers(
            db,
            watcher,
            nodes,
            eth_proxies[0],
            customer,
            lambda n: faucet.fund(address, Money(n * 10**15, ETH)),
            lambda: None,  # instamine, one confirmation: final at once
        )


def test_tron_deposits_keep_arriving_across_failovers(
    db: Database, tron_sim: TronNode, tron_proxies: tuple[FaultProxy, FaultProxy]
) -> None:
    with ExitStack() as stack:

        def scanner_at(url: str) -> ChainScanner:
            api = stack.enter_context(TronApi(url, timeout=1.0))
            return TronScanner(api, usdt_contract=tron_sim.usdt_contract)

        watcher, nodes, clock, address, customer = _watch(
            db, Chain.TRON, TronNetwork.DEVNET, tron_proxies, scanner_at
        )
        faucet = tron_sim.faucet()

        def settle() -> None:
            httpx.post(f"{tron_sim.url}/debug/mine", json={"blocks": 20}, timeout=10)
            tip = nodes.nodes[1].scanner.head().height
            latest: datetime = nodes.nodes[1].scanner.block(tip, frozenset()).time
            clock.set(max(clock.now(), latest))

        _across_failovers(
            db,
            watcher,
            nodes,
            tron_proxies[0],
            customer,
            lambda n: faucet.fund(address, Money(n * 1_000_000, TRX)),
            settle,
        )
