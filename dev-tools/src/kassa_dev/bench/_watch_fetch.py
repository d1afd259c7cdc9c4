"""The raw fetch rate of the measured blocks, without the watcher, two ways:

* **bare RPC**: the per-block requests the chain's scanner makes, through the same client
  (`BtcRpc.call`, `EthRpc.call`, `TronApi.post`: HTTP and JSON decoding, nothing else) —
  BTC ``getblockhash`` + ``getblock <hash> 2``; ETH ``eth_getBlockByNumber(h, true)`` +
  ``eth_getLogs`` of the block's Transfer events; TRON ``wallet/getblockbynum`` +
  ``wallet/gettransactioninfobyblocknum`` when the block has contract calls. Per-deposit
  lookups (BTC senders, ETH receipts) are not in this figure.
* **scanner**: ``scanner.block(h, watched)`` of a fresh scanner built by `build_scanner` (cold
  caches, like the watcher's), with every watched match key: all the chain I/O and decoding the
  watcher does per block, per-deposit lookups included.

`TimedScanner` wraps the watcher's scanner to tell how much of a watcher run was spent in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kassa.chains.btc.rpc import BtcRpc
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.eth.scanner import TRANSFER_TOPIC, EthScanner
from kassa.chains.network import Chain
from kassa.chains.scanning import ChainBlock, ChainHead, ChainScanner
from kassa.chains.tron.api import TronApi
from kassa.chains.tron.scanner import TronScanner
from kassa.deposits.settings import ChainsSettings
from kassa_dev.bench._progress import Heartbeat, Progress


@dataclass(frozen=True, slots=True)
class FetchFigures:
    blocks: int
    requests: int | None
    """HTTP requests made (known for the bare fetch only)."""
    transfers: int | None
    """Transfers the scanner returned (scanner fetch only)."""
    seconds: float

    @property
    def blocks_per_second(self) -> float:
        return self.blocks / self.seconds if self.seconds > 0 else 0.0


class TimedScanner:
    """A `ChainScanner` that forwards to another and adds up the time spent in it."""

    def __init__(self, inner: ChainScanner) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.block_seconds = 0.0
        self.blocks = 0

    @property
    def chain(self) -> Chain:
        return self.inner.chain

    def head(self) -> ChainHead:
        started = time.perf_counter()
        try:
            return self.inner.head()
        finally:
            self.seconds += time.perf_counter() - started

    def block_hash(self, height: int) -> str | None:
        started = time.perf_counter()
        try:
            return self.inner.block_hash(height)
        finally:
            self.seconds += time.perf_counter() - started

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        started = time.perf_counter()
        try:
            return self.inner.block(height, watched)
        finally:
            spent = time.perf_counter() - started
            self.seconds += spent
            self.block_seconds += spent
            self.blocks += 1


def close_scanner(scanner: ChainScanner) -> None:
    """Close the HTTP client of a scanner made by `build_scanner`."""
    if isinstance(scanner, BtcScanner | EthScanner):
        scanner.rpc.close()
    elif isinstance(scanner, TronScanner):
        scanner.api.close()


def bare_fetch(
    chain: Chain, settings: ChainsSettings
) -> tuple[Callable[[int], int], Callable[[], None]]:
    """A function fetching one block with the scanner's per-block requests (returning how many
    it made), and the function closing its client."""
    if chain is Chain.BTC:
        btc = settings.btc
        rpc = BtcRpc(
            btc.rpc_url or "", btc.rpc_api_key.get_secret_value() if btc.rpc_api_key else ""
        )

        def btc_block(height: int) -> int:
            block_hash = rpc.call("getblockhash", height)
            rpc.call("getblock", block_hash, 2)
            return 2

        return btc_block, rpc.close
    if chain is Chain.ETH:
        eth = EthRpc(settings.eth.rpc_url or "")

        def eth_block(height: int) -> int:
            eth.call("eth_getBlockByNumber", hex(height), True)
            logs_filter = {
                "fromBlock": hex(height),
                "toBlock": hex(height),
                "topics": [TRANSFER_TOPIC],
            }
            eth.call("eth_getLogs", logs_filter)
            return 2

        return eth_block, eth.close
    api = TronApi(settings.tron.api_url or "")

    def tron_block(height: int) -> int:
        block = api.post("wallet/getblockbynum", {"num": height})
        if not _has_contract_calls(block):
            return 1
        api.post("wallet/gettransactioninfobyblocknum", {"num": height})
        return 2

    return tron_block, api.close


def _has_contract_calls(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    return any(
        contract.get("type") == "TriggerSmartContract"
        for tx in block.get("transactions") or ()
        for contract in (tx.get("raw_data") or {}).get("contract") or ()
    )


def measure_bare(
    fetch: Callable[[int], int], start: int, end: int, label: str, progress: Progress
) -> FetchFigures:
    heartbeat = Heartbeat()
    requests = 0
    started = time.perf_counter()
    for height in range(start, end + 1):
        requests += fetch(height)
        if heartbeat.due():
            progress.heartbeat(f"{label}: {height - start + 1:,}/{end - start + 1:,} blocks")
    seconds = time.perf_counter() - started
    return FetchFigures(end - start + 1, requests, None, seconds)


def measure_scanner(
    scanner: ChainScanner,
    start: int,
    end: int,
    watched: frozenset[str],
    progress: Progress,
) -> FetchFigures:
    heartbeat = Heartbeat()
    transfers = 0
    started = time.perf_counter()
    for height in range(start, end + 1):
        transfers += len(scanner.block(height, watched).transfers)
        if heartbeat.due():
            progress.heartbeat(f"scanner.block: {height - start + 1:,}/{end - start + 1:,} blocks")
    seconds = time.perf_counter() - started
    return FetchFigures(end - start + 1, None, transfers, seconds)
