"""Running payout workers side by side on a local chain, and checking from the chain itself
what they paid. Used by `kassa bench payouts` and by the two-worker concurrency test.

`WorkerPool` runs ``count`` production `PayoutWorker`s in threads, each with its own rail and
node connection (as separate `kassa payout-worker` processes would have), sharing one database,
plus a miner thread that mines a block every ``mine_every`` seconds. The work is network and
database I/O, so the threads really overlap. `WorkerPool.wait` polls the requests' states until
all are settled, noting when the last one was sent and when the last one was confirmed.

`paid_on_chain` reads every block of a range with the deposit scanner and returns each
successful transfer to the given addresses: what the chain says was paid, independent of
Kassa's own tables.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import coincurve
from pydantic import SecretStr
from sqlalchemy import func, select

from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.eth.tx import eth_address_for_key
from kassa.chains.network import BtcNetwork, Chain
from kassa.chains.scanning import ChainScanner
from kassa.chains.tron.tx import tron_address_for_key
from kassa.clock import Clock
from kassa.db import Database
from kassa.deposits.addresses import match_key
from kassa.deposits.runtime import build_scanner
from kassa.deposits.settings import ChainsSettings
from kassa.payouts.model import RequestStatus
from kassa.payouts.runtime import build_rail
from kassa.payouts.settings import PayoutSettings
from kassa.payouts.signer import LocalKeySigner
from kassa.payouts.tables import payout_request
from kassa.payouts.worker import PayoutWorker
from kassa.pricing.service import PricingService
from kassa_dev.devnet.testing import BitcoinNode, GanacheNode, TronNode

LocalNode = BitcoinNode | GanacheNode | TronNode

SENT = frozenset({RequestStatus.BROADCAST.value, RequestStatus.CONFIRMED.value})
SETTLED = frozenset({RequestStatus.CONFIRMED.value, RequestStatus.FAILED.value})
IDLE_PAUSE_SECONDS = 0.05


def close_client(holder: object) -> None:
    """Close the node client a rail or scanner holds (its HTTP connection pool)."""
    for name in ("rpc", "api", "_api", "_rpc"):
        client = getattr(holder, name, None)
        if client is not None and hasattr(client, "close"):
            client.close()


@dataclass(frozen=True, slots=True)
class Waited:
    """How a wait ended: the requests' states, and when (seconds after the wait began) the
    last one was sent and the last one was confirmed (None if that never happened)."""

    statuses: dict[str, int]
    sent_seconds: float | None
    settled_seconds: float | None

    @property
    def confirmed(self) -> int:
        return self.statuses.get(RequestStatus.CONFIRMED.value, 0)


class WorkerPool:
    """``count`` payout workers and a miner in threads; see the module docstring."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        pricing: PricingService,
        settings: PayoutSettings,
        chains: ChainsSettings,
        signer: LocalKeySigner,
        chain: Chain,
        *,
        count: int,
        mine: Callable[[], object],
        mine_every: float,
        on_block: Callable[[], object] | None = None,
    ) -> None:
        self.database = database
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.signed: dict[str, int] = defaultdict(int)
        self.rounds: dict[str, int] = defaultdict(int)
        self._mine = mine
        self._mine_every = mine_every
        self._on_block = on_block
        self.rails = [build_rail(chains, settings, signer, chain) for _ in range(count)]
        self.workers = [
            PayoutWorker(
                database,
                clock,
                pricing,
                settings,
                {chain: rail},
                worker_id=f"payout-worker:w{n}",
                crash_at=None,
            )
            for n, rail in enumerate(self.rails, start=1)
        ]
        self._threads = [
            threading.Thread(target=self._work, args=(w,), name=w.worker_id, daemon=True)
            for w in self.workers
        ]
        self._threads.append(threading.Thread(target=self._miner, name="miner", daemon=True))

    def _work(self, worker: PayoutWorker) -> None:
        while not self.stop.is_set():
            try:
                report = worker.run_once()
            except Exception as error:  # kept for the caller; a round must not fail
                self.errors.append(error)
                self.stop.set()
                return
            self.rounds[worker.worker_id] += 1
            self.errors.extend(RuntimeError(text) for text in report.errors)
            self.signed[worker.worker_id] += len(report.signed)
            if report.idle:
                self.stop.wait(IDLE_PAUSE_SECONDS)

    def _miner(self) -> None:
        while not self.stop.wait(self._mine_every):
            try:
                self._mine()
                if self._on_block is not None:
                    self._on_block()
            except Exception as error:  # kept for the caller
                self.errors.append(error)
                self.stop.set()
                return

    def __enter__(self) -> WorkerPool:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        for rail in self.rails:
            close_client(rail)

    def wait(
        self,
        ids: Collection[uuid.UUID],
        *,
        timeout_seconds: float,
        every: Callable[[dict[str, int], float], object] | None = None,
        every_seconds: float = 2.0,
    ) -> Waited:
        """Poll until every request in ``ids`` is confirmed or failed, a thread failed, or
        ``timeout_seconds`` passed; ``every(statuses, elapsed)`` is called now and then."""
        started = time.monotonic()
        sent_at: float | None = None
        next_report = started + every_seconds
        while True:
            statuses = request_statuses(self.database, ids)
            now = time.monotonic()
            if sent_at is None and sum(statuses.get(s, 0) for s in SENT | SETTLED) == len(ids):
                sent_at = now - started
            if sum(statuses.get(s, 0) for s in SETTLED) == len(ids):
                return Waited(statuses, sent_at, now - started)
            if self.stop.is_set() or now - started > timeout_seconds:
                return Waited(statuses, sent_at, None)
            if every is not None and now >= next_report:
                every(statuses, now - started)
                next_report = now + every_seconds
            time.sleep(0.1)


def request_statuses(database: Database, ids: Collection[uuid.UUID]) -> dict[str, int]:
    """How many of ``ids`` are in each state."""
    with database.transaction() as conn:
        rows = conn.execute(
            select(payout_request.c.status, func.count())
            .where(payout_request.c.id.in_(list(ids)))
            .group_by(payout_request.c.status)
        ).all()
    return {str(row[0]): int(row[1]) for row in rows}


def fresh_address(chain: Chain) -> str:
    """An address nobody has used (a new random key's) on the devnet network of ``chain``."""
    key = coincurve.PrivateKey()
    if chain is Chain.BTC:
        return p2wpkh_address_for_key(key, BtcNetwork.REGTEST).text
    if chain is Chain.ETH:
        return eth_address_for_key(key).text
    return tron_address_for_key(key).text


def chains_settings_for(node: LocalNode) -> ChainsSettings:
    """Chain settings with only ``node``'s chain enabled, pointing at it (ETH final after one
    confirmation)."""
    values: dict[str, Any] = {
        "btc": {"enabled": False},
        "eth": {"enabled": False},
        "tron": {"enabled": False},
    }
    if isinstance(node, BitcoinNode):
        values["btc"] = {"rpc_url": node.url, "rpc_api_key": SecretStr(node.api_key)}
    elif isinstance(node, GanacheNode):
        values["eth"] = {
            "rpc_url": node.url,
            "usdt_contract": node.usdt_address,
            "finality": "confirmations",
            "confirmations": 1,
        }
    elif isinstance(node, TronNode):
        values["tron"] = {"api_url": node.url, "usdt_contract": node.usdt_contract}
    return ChainsSettings.model_validate(values)


def chain_tip(chains: ChainsSettings, chain: Chain) -> int:
    scanner = build_scanner(chains, chain)
    try:
        return scanner.head().height
    finally:
        close_client(scanner)


def paid_on_chain(
    chains: ChainsSettings, chain: Chain, from_height: int, addresses: Collection[str]
) -> dict[tuple[str, str], list[int]]:
    """Every successful transfer to ``addresses`` in the blocks above ``from_height`` up to the
    tip, read with the deposit scanner: (match key of the address, asset code) → amounts."""
    watched = frozenset(match_key(chain, address) for address in addresses)
    scanner: ChainScanner = build_scanner(chains, chain)
    try:
        paid: dict[tuple[str, str], list[int]] = defaultdict(list)
        for height in range(from_height + 1, scanner.head().height + 1):
            for transfer in scanner.block(height, watched).transfers:
                key = match_key(chain, transfer.to_address)
                if transfer.success and key in watched:
                    paid[key, transfer.asset].append(transfer.amount)
        return paid
    finally:
        close_client(scanner)
