"""Real local chain nodes for tests: each on a free 127.0.0.1 port in its own directory.

    with start_ganache_node(tmp_path) as eth:      # instamine, TestUSDT deployed
        eth.web3().eth.get_balance(...)
    node = start_bitcoin_node(tmp_path)            # 150 blocks mined to the faucet key
    try: ... finally: node.stop()

Each `start_*` returns a handle with the node's URL (and what else a test needs to talk to it)
and a `stop()` that ends the process by pid (SIGTERM, then SIGKILL); handles are also context
managers. A port is picked free just before the launch; if another process grabs it in between,
the start is retried on a new port. Starting needs the chain tools; `ensure_chain_tools()` runs
first and installs them with `npm ci` if they are missing.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from web3 import Web3

from kassa_dev.devnet import bitcoin as btc
from kassa_dev.devnet import ganache, tron_node
from kassa_dev.devnet.faucet import DevnetEndpoints, Faucet
from kassa_dev.devnet.processes import ProcessError, ProcessManager, ProcessRecord, port_is_open
from kassa_dev.devnet.tools import ensure_chain_tools

__all__ = [
    "BitcoinNode",
    "GanacheNode",
    "NodeHandle",
    "TronNode",
    "free_port",
    "start_bitcoin_node",
    "start_ganache_node",
    "start_tron_node",
]

_ATTEMPTS = 3

_R = TypeVar("_R")


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's choice for an ephemeral bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class NodeHandle:
    """A running node: its URL, its process record, and `stop()`."""

    url: str
    process: ProcessRecord
    manager: ProcessManager

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log_file(self) -> Path:
        return self.manager.log_file(self.process.name)

    def stop(self) -> None:
        self.manager.stop(self.process.name)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class GanacheNode(NodeHandle):
    usdt_address: str
    """TestUSDT, deployed by account 0, which holds the minted supply."""

    def web3(self) -> Web3:
        return ganache.web3_for(self.url)

    def faucet(self) -> Faucet:
        return Faucet(DevnetEndpoints(eth_url=self.url, usdt_erc20=self.usdt_address))


@dataclass
class BitcoinNode(NodeHandle):
    api_key: str

    @property
    def faucet_key(self) -> btc.FaucetKey:
        return btc.faucet_key()

    def rpc(self) -> btc.BitcoinRpc:
        return btc.BitcoinRpc(self.url, self.api_key)

    def faucet(self) -> Faucet:
        return Faucet(DevnetEndpoints(btc_url=self.url, btc_api_key=self.api_key))


@dataclass
class TronNode(NodeHandle):
    usdt_contract: str
    """Base58 address of the simulator's USDT TRC-20 contract."""
    genesis_address: str

    def faucet(self) -> Faucet:
        return Faucet(DevnetEndpoints(tron_url=self.url))


def _on_free_port(start: Callable[[int], _R]) -> _R:
    for attempt in range(_ATTEMPTS):
        port = free_port()
        try:
            return start(port)
        except ProcessError:
            # Someone took the port between the check and the launch: try another one.
            if attempt + 1 == _ATTEMPTS or not port_is_open(port):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def start_ganache_node(workdir: Path, *, block_time: int | None = None) -> GanacheNode:
    """ganache with TestUSDT deployed (1e12 USDT minted to account 0); instamine, or a block
    every `block_time` seconds."""
    ensure_chain_tools()
    manager = ProcessManager(workdir / "ganache")

    def start(port: int) -> ProcessRecord:
        return ganache.start_ganache(manager, port=port, block_time=block_time)

    record = _on_free_port(start)
    url = f"http://127.0.0.1:{record.port}"
    try:
        usdt = ganache.deploy_test_usdt(ganache.web3_for(url))
    except BaseException:
        manager.stop(record.name)
        raise
    return GanacheNode(url=url, process=record, manager=manager, usdt_address=usdt)


def start_bitcoin_node(workdir: Path, *, blocks: int = btc.SETUP_BLOCKS) -> BitcoinNode:
    """bcoin regtest in memory, `blocks` blocks mined to the devnet faucet key."""
    ensure_chain_tools()
    manager = ProcessManager(workdir / "bitcoin")
    api_key = secrets.token_urlsafe(16)

    def start(port: int) -> ProcessRecord:
        return btc.start_bitcoin(manager, api_key=api_key, port=port)

    record = _on_free_port(start)
    node = BitcoinNode(
        url=f"http://127.0.0.1:{record.port}", process=record, manager=manager, api_key=api_key
    )
    try:
        btc.bootstrap(node.rpc(), blocks=blocks)
    except BaseException:
        node.stop()
        raise
    return node


def start_tron_node(workdir: Path, *, block_interval: float = 0.5) -> TronNode:
    """The TRON simulator with a short block interval (tests wait for inclusion)."""
    if not tron_node.simulator_available():
        raise ProcessError("the TRON simulator (kassa_dev.devnet.tron) is not available yet")
    manager = ProcessManager(workdir / "tron")

    def start(port: int) -> ProcessRecord:
        return tron_node.start_tron(manager, port=port, block_interval=block_interval)

    record = _on_free_port(start)
    url = f"http://127.0.0.1:{record.port}"
    try:
        info = tron_node.debug_info(url)
    except BaseException:
        manager.stop(record.name)
        raise
    return TronNode(
        url=url,
        process=record,
        manager=manager,
        usdt_contract=info.usdt_contract,
        genesis_address=info.genesis_address,
    )
