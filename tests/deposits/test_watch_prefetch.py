"""The watcher's prefetch (`kassa.deposits.prefetch`) on a real bcoin regtest node, both
databases: blocks fetched ahead of a reorg never get in, a stop ends the fetcher at once and the
next tick goes on without a gap, and a node failure in the fetcher reaches the tick after every
block fetched before it is stored.

The node is shared by the session, so each test starts from the tip it finds. A `Hooked`
scanner runs a test's action inside the fetcher thread when a given height is asked for: that
is how the chain is reorganised, the watcher stopped or the node failed while blocks are being
fetched ahead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import coincurve
import pytest
from sqlalchemy import select
from tests.deposits.test_watch_btc import FAUCET, KEY, faucet_pays

from kassa.accounts import service as accounts
from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.btc.rpc import BtcRpc
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.network import BtcNetwork, Chain
from kassa.chains.scanning import ChainBlock, ChainHead
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.derive import HdDeriver
from kassa.deposits.model import DepositStatus
from kassa.deposits.tables import chain_block
from kassa.deposits.watcher import Checkpoint, Watcher, WatcherConfig
from kassa.ledger.accounts import get_balance
from kassa.money import USD, Money
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devnet.testing import BitcoinNode

NET = BtcNetwork.REGTEST


class Hooked:
    """A `BtcScanner` that runs ``hooks[height]`` (once) before fetching that block."""

    def __init__(self, inner: BtcScanner, hooks: dict[int, Callable[[], None]]) -> None:
        self.inner = inner
        self.hooks = hooks
        self.fetched: list[int] = []
        self.threads: set[str] = set()

    @property
    def chain(self) -> Chain:
        return self.inner.chain

    def head(self) -> ChainHead:
        return self.inner.head()

    def block_hash(self, height: int) -> str | None:
        return self.inner.block_hash(height)

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        self.threads.add(threading.current_thread().name)
        hook = self.hooks.pop(height, None)
        if hook is not None:
            hook()
        self.fetched.append(height)
        return self.inner.block(height, watched)


@dataclass
class World:
    db: Database
    node: BitcoinNode
    scanner: Hooked
    watcher: Watcher
    start: int
    address: str
    customer: accounts.CustomerAccount

    def mine(self, blocks: int = 1, to: str = FAUCET.text) -> list[str]:
        return self.node.rpc().generate(blocks, to)

    def stored(self) -> dict[int, str]:
        with self.db.transaction() as conn:
            rows = conn.execute(
                select(chain_block.c.height, chain_block.c.hash).where(
                    chain_block.c.chain == Chain.BTC.value, chain_block.c.height > self.start
                )
            ).all()
        return {int(row.height): str(row.hash) for row in rows}

    def watcher_with(self, **config: Any) -> Watcher:
        """Another watcher on the same world, its configuration changed by ``config``."""
        w = self.watcher
        return Watcher(self.db, w.clock, self.scanner, w.pricing, replace(w.config, **config))

    def on_node(self, heights: range) -> dict[int, str]:
        rpc = self.node.rpc()
        return {height: str(rpc.call("getblockhash", height)) for height in heights}


@pytest.fixture
def world(db: Database, bitcoin_node: BitcoinNode) -> Iterator[World]:
    with BtcRpc(bitcoin_node.url, bitcoin_node.api_key) as rpc:
        inner = BtcScanner(rpc, NET, confirmations=2)
        head = inner.head()
        clock = ManualClock(inner.block(head.height, frozenset()).time)
        pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
        pricing.refresh()
        with db.transaction() as conn:
            customer = accounts.create(conn, external_id="btc-pf", now=clock.now(), request=None)
            address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(KEY), clock.now())
        scanner = Hooked(inner, {})
        # Start after the tip: the first block scanned is the test's own.
        config = WatcherConfig(Chain.BTC, start_height=head.height + 1, prefetch_blocks=3)
        watcher = Watcher(db, clock, scanner, pricing, config)
        yield World(db, bitcoin_node, scanner, watcher, head.height, address.address, customer)


def _usd(world: World) -> Money:
    with world.db.transaction() as conn:
        return get_balance(conn, world.customer.ledger_account_id).posted


def _deposits(world: World) -> list[records.Deposit]:
    with world.db.transaction() as conn:
        return records.for_account(conn, world.customer.id)


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kassa-prefetch-")]


def test_blocks_prefetched_past_a_reorg_never_get_in_and_the_surviving_credit_stands(
    world: World,
) -> None:
    h = world.start
    faucet_pays(world.node, world.address, 200_000)
    [a1, a2, *_] = world.mine(7)  # the payment is in a1 (height h+1)
    other = p2wpkh_address_for_key(coincurve.PrivateKey(), NET).text

    def reorganise() -> None:
        # While the fetcher is at h+3, a longer branch from h+1 replaces a2 and what follows.
        world.node.rpc().call("invalidateblock", a2)
        world.mine(8, to=other)

    world.scanner.hooks[h + 3] = reorganise
    report = world.watcher.tick()
    # a1 and a2 were taken; the block at h+3 came from the new branch and did not extend a2,
    # so it and whatever the fetcher had fetched beyond it were dropped.
    assert report.scanned == 2 and report.rewound_to is None
    assert world.scanner.threads == {"kassa-prefetch-btc"}
    assert max(world.scanner.fetched) >= h + 3
    assert world.stored() == {h + 1: a1, h + 2: a2}
    assert world.watcher.checkpoint() == Checkpoint(h + 2, a2)
    [credited] = _deposits(world)  # a1 was final at the tick's head: credited
    assert credited.status is DepositStatus.CREDITED
    assert _usd(world) == Money.parse("120", USD)  # 0.002 BTC at 60 000

    report = world.watcher.tick()
    assert report.rewound_to == h + 1
    tip = world.node.rpc().height()
    assert world.stored() == world.on_node(range(h + 1, tip + 1))
    assert world.watcher.checkpoint() == Checkpoint(tip, world.on_node(range(tip, tip + 1))[tip])
    # a1 is still on the chain: the deposit keeps its one credit.
    [kept] = _deposits(world)
    assert kept.status is DepositStatus.CREDITED and kept.credit_count == 1
    assert _usd(world) == Money.parse("120", USD)
    assert not _prefetch_threads()


def test_a_final_deposit_is_credited_while_the_fetcher_waits_for_the_next_block(
    world: World,
) -> None:
    """The database work goes in the fetch's shadow: a deposit in a final block is credited
    as soon as its block is stored and the next one is still on its way, not at the end of
    the tick (one deposit is far from a full credit batch)."""
    h = world.start
    faucet_pays(world.node, world.address, 200_000)
    world.mine(12)  # the payment is in h+1, final at the tick's head
    seen_while_fetching: list[list[DepositStatus]] = []

    def wait_for_the_credit() -> None:
        # The fetcher holds block h+8 back until the tick has credited, or gives up.
        deadline = time.monotonic() + 10
        statuses: list[DepositStatus] = []
        while time.monotonic() < deadline:
            statuses = [deposit.status for deposit in _deposits(world)]  # none until stored
            if statuses == [DepositStatus.CREDITED]:
                break
            time.sleep(0.02)
        seen_while_fetching.append(statuses)

    world.scanner.hooks[h + 8] = wait_for_the_credit
    # A quarter of a credit batch is worth crediting in the shadow: one deposit here.
    report = world.watcher_with(credit_batch=4).tick()
    assert seen_while_fetching == [[DepositStatus.CREDITED]]
    assert report.scanned == 12 and len(report.credited) == 1
    [deposit] = _deposits(world)
    assert deposit.credit_count == 1
    assert _usd(world) == Money.parse("120", USD)  # 0.002 BTC at 60 000
    assert not _prefetch_threads()


def test_a_stop_while_prefetching_ends_the_fetcher_and_the_next_tick_leaves_no_gap(
    world: World,
) -> None:
    h = world.start
    world.mine(12)
    stop = threading.Event()
    world.scanner.hooks[h + 4] = stop.set
    report = world.watcher.tick(stop)
    assert report.scanned <= 4
    assert not _prefetch_threads()
    checkpoint = world.watcher.checkpoint()
    assert checkpoint is not None and checkpoint.height == h + report.scanned
    assert world.stored() == world.on_node(range(h + 1, h + report.scanned + 1))

    report = world.watcher.tick()
    tip = world.node.rpc().height()
    assert world.stored() == world.on_node(range(h + 1, tip + 1))
    assert not _prefetch_threads()


def test_a_node_failure_in_the_fetcher_stores_the_blocks_before_it_and_is_raised(
    world: World,
) -> None:
    h = world.start
    world.mine(6)

    def fail() -> None:
        raise ConnectionError("node went away")

    world.scanner.hooks[h + 4] = fail
    watcher = world.watcher_with(store_batch_blocks=2)
    with pytest.raises(ConnectionError, match="node went away"):
        watcher.tick()
    assert not _prefetch_threads()
    # h+1 and h+2 were a stored batch; h+3 was in the next one, which the failure dropped.
    assert world.stored() == world.on_node(range(h + 1, h + 3))
    watcher.tick()
    tip = world.node.rpc().height()
    assert world.stored() == world.on_node(range(h + 1, tip + 1))
