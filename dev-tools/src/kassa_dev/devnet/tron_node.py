"""The local TRON chain: Kassa's java-tron HTTP API simulator (`kassa_dev.devnet.tron`) as a
process.

No TRON node can be installed here, so the simulator stands in for java-tron's HTTP API. This
module only runs it: `python -m kassa_dev.devnet.tron --host 127.0.0.1 --port P --state-file F
--block-interval S`, ready when `POST /wallet/getnodeinfo` answers. Its `GET /debug/info` tells
the head and solidified heights, the built-in USDT (TRC-20) contract and the genesis account that
holds all TRX and USDT at block 0; the faucet signs with that account's key. `POST /debug/mine`
produces blocks on demand (the faucet uses it to include its payments at once), and
`POST /debug/energy-price` changes what energy costs from the next block on (tests of a fee that
rises between a quote and a payout).

(This module is `tron_node`, not `tron`: `kassa_dev.devnet.tron` is the simulator package itself.)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kassa_dev.devnet.processes import ProcessManager, ProcessRecord
from kassa_dev.devnet.settings import TRON_PORT

__all__ = [
    "DEFAULT_PORT",
    "PROCESS_NAME",
    "TronDebugInfo",
    "debug_info",
    "mine",
    "set_energy_price",
    "simulator_available",
    "start_tron",
    "tron_argv",
]

PROCESS_NAME = "tron"
DEFAULT_PORT = TRON_PORT
SIMULATOR_MODULE = "kassa_dev.devnet.tron"


def simulator_available() -> bool:
    """Whether the simulator package is present (it is developed alongside this module)."""
    return (Path(__file__).parent / "tron" / "__main__.py").is_file()


@dataclass(frozen=True, slots=True)
class TronDebugInfo:
    head: int
    """Number of the newest block."""
    solid_head: int
    """Number of the newest solidified (irreversible) block."""
    solid_head_id: str
    """64-hex id of that block (8 bytes of number, 24 of hash): a TAPoS reference."""
    chain_time_ms: int
    """The simulator's clock, Unix milliseconds (`/debug/mine` can move it ahead)."""
    usdt_contract: str
    """Base58 (`T…`) address of the USDT TRC-20 contract."""
    genesis_address: str
    """Base58 address of the genesis account (holds the TRX and USDT supply at block 0)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TronDebugInfo:
        return cls(
            head=int(data["head"]),
            solid_head=int(data["solid_head"]),
            solid_head_id=str(data["solid_head_id"]),
            chain_time_ms=int(data["chain_time_ms"]),
            usdt_contract=str(data["usdt_contract"]),
            genesis_address=str(data["genesis_address"]),
        )


def debug_info(url: str, *, timeout: float = 10.0) -> TronDebugInfo:
    response = httpx.get(f"{url.rstrip('/')}/debug/info", timeout=timeout)
    response.raise_for_status()
    return TronDebugInfo.from_json(response.json())


def mine(url: str, blocks: int = 1, *, timeout: float = 10.0) -> TronDebugInfo:
    """Produce `blocks` blocks now (`POST /debug/mine`), whatever the block timer does."""
    response = httpx.post(f"{url.rstrip('/')}/debug/mine", json={"blocks": blocks}, timeout=timeout)
    response.raise_for_status()
    return TronDebugInfo.from_json(response.json())


def set_energy_price(url: str, sun: int, *, timeout: float = 10.0) -> int:
    """Burn `sun` per unit of energy from the next block on (`getchainparameters` reports it at
    once, as after a passed proposal); returns the first block that charges it."""
    response = httpx.post(
        f"{url.rstrip('/')}/debug/energy-price", json={"energy_price": sun}, timeout=timeout
    )
    response.raise_for_status()
    return int(response.json()["from_block"])


def tron_argv(port: int, *, state_file: Path | None, block_interval: float) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        SIMULATOR_MODULE,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--block-interval",
        f"{block_interval:g}",
    ]
    if state_file is not None:
        argv += ["--state-file", str(state_file)]
    return argv


def start_tron(
    manager: ProcessManager,
    *,
    port: int = DEFAULT_PORT,
    state_file: Path | None = None,
    block_interval: float = 3.0,
    detach: bool = False,
) -> ProcessRecord:
    """Start the simulator and wait for its first `wallet/getnodeinfo` answer."""
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        response = httpx.post(f"{url}/wallet/getnodeinfo", json={}, timeout=2.0)
        return response.status_code == 200 and "block" in response.json()

    return manager.start(
        PROCESS_NAME,
        tron_argv(port, state_file=state_file, block_interval=block_interval),
        ready=ready,
        port=port,
        detach=detach,
    )
