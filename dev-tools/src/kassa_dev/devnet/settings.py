"""The devnet's default ports and block pacing, in a module of their own so that the `kassa devnet`
commands can show them in `--help` without loading the chain libraries."""

from __future__ import annotations

from dataclasses import dataclass

ETH_PORT = 8545
"""ganache's JSON-RPC port (Ethereum's customary one)."""
BTC_PORT = 18443
"""bcoin's HTTP/RPC port (Bitcoin Core's regtest RPC port)."""
TRON_PORT = 8090
"""The TRON simulator's port (java-tron's full-node HTTP port)."""


@dataclass(frozen=True, slots=True)
class DevnetSettings:
    """Ports and block pacing of `kassa devnet up`."""

    eth_port: int = ETH_PORT
    btc_port: int = BTC_PORT
    tron_port: int = TRON_PORT
    eth_block_time: int = 2
    """Seconds between ganache blocks; 0 is instamine (a block per transaction)."""
    btc_block_interval: float = 10.0
    """Seconds between regtest blocks from the miner process; 0 means no miner (mine on demand)."""
    tron_block_interval: float = 3.0
    """Seconds between TRON simulator blocks (3 s, as on TRON)."""
