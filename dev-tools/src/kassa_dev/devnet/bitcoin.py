"""The local Bitcoin chain: bcoin 1.0.2 in regtest through `tools/chains/bcoin-regtest.js`.

* The launcher makes bcoin answer like Bitcoin Core where Kassa cares (`bcrt1` addresses, strict
  `sendrawtransaction` with Core's error codes, `getblock` verbosity); see its header.
* The node listens on 127.0.0.1 only and always needs an API key (HTTP basic auth, any user).
  JSON-RPC is POSTed to `/`; `--index-address` adds the REST lookup `GET /coin/address/<addr>`,
  which the faucet uses to find its coins (bcoin has no `scantxoutset`).
* A fixed, publicly known devnet key is the faucet. At start, blocks are mined to it until the
  chain has :data:`SETUP_BLOCKS`, so coinbases from the first blocks are mature (100
  confirmations) and spendable at once, and segwit is active.
* In `kassa devnet` a separate miner process (`python -m kassa_dev.devnet.miner`) mines one block
  every N seconds to the faucet, so confirmations tick like a real chain; tests mine on demand.
* Regtest halves the subsidy every 150 blocks; values are always read from the coins, never assumed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import coincurve
import httpx

from kassa.chains.btc.address import p2wpkh_address_for_public_key
from kassa.chains.network import BtcNetwork
from kassa_dev.devnet.processes import ProcessManager, ProcessRecord
from kassa_dev.devnet.rpc import json_rpc
from kassa_dev.devnet.settings import BTC_PORT
from kassa_dev.devnet.tools import chain_tools_dir, node_executable

__all__ = [
    "COINBASE_MATURITY",
    "DEFAULT_PORT",
    "PROCESS_NAME",
    "SETUP_BLOCKS",
    "BitcoinRpc",
    "FaucetKey",
    "Utxo",
    "bitcoin_argv",
    "bootstrap",
    "faucet_key",
    "mine_forever",
    "start_bitcoin",
]

PROCESS_NAME = "bitcoin"
API_KEY_ENV = "BCOIN_REGTEST_API_KEY"
"""The launcher reads its API key from this environment variable."""
DEFAULT_PORT = BTC_PORT
COINBASE_MATURITY = 100
"""Confirmations a coinbase output needs before it can be spent (consensus)."""

SETUP_BLOCKS = 150
"""Chain height mined at start: coinbases of heights 1-50 (2500 BTC) are then mature."""

# --------------------------------------------------------------------------- keys


@dataclass(frozen=True, slots=True)
class FaucetKey:
    """A P2WPKH key pair on regtest."""

    private_key: bytes
    """32-byte secp256k1 secret."""
    public_key: bytes
    """33-byte compressed public key."""
    address: str
    """`bcrt1q…` P2WPKH address."""
    script_pubkey: bytes
    """`0014<hash160(public_key)>`."""


@cache
def faucet_key() -> FaucetKey:
    """The devnet faucet: sha256("kassa devnet bitcoin faucet") as a secret. Public; devnet only."""
    secret = hashlib.sha256(b"kassa devnet bitcoin faucet").digest()
    public = coincurve.PrivateKey(secret).public_key.format(compressed=True)
    address = p2wpkh_address_for_public_key(public, BtcNetwork.REGTEST)
    return FaucetKey(
        private_key=secret,
        public_key=public,
        address=address.text,
        script_pubkey=address.script_pubkey,
    )


# --------------------------------------------------------------------------- RPC


@dataclass(frozen=True, slots=True)
class Utxo:
    """An unspent output as bcoin's address index reports it."""

    txid: str
    vout: int
    value: int
    """Satoshi."""
    script_pubkey: bytes
    height: int
    """Block height, or -1 while the creating transaction is in the mempool."""
    coinbase: bool

    def spendable_at(self, tip: int) -> bool:
        """Whether a transaction in the next block (height tip+1) may spend this output."""
        if self.height < 0:
            return False
        return not self.coinbase or tip + 1 - self.height >= COINBASE_MATURITY


class BitcoinRpc:
    """The few calls devnet makes to bcoin: JSON-RPC at `/`, REST for the address index."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url = url.rstrip("/")
        self._auth = ("kassa", api_key)

    def call(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
        return json_rpc(self.url + "/", method, list(params), auth=self._auth, timeout=timeout)

    def height(self) -> int:
        return int(self.call("getblockcount"))

    def generate(self, blocks: int, address: str) -> list[str]:
        """Mine `blocks` blocks paying `address`; return their hashes."""
        return [str(h) for h in self.call("generatetoaddress", blocks, address, timeout=120.0)]

    def send_raw_transaction(self, raw: bytes) -> str:
        return str(self.call("sendrawtransaction", raw.hex()))

    def utxos(self, address: str) -> list[Utxo]:
        """Unspent outputs paying `address`, confirmed and in the mempool, minus mempool spends."""
        response = httpx.get(f"{self.url}/coin/address/{address}", auth=self._auth, timeout=30.0)
        response.raise_for_status()
        return [
            Utxo(
                txid=str(coin["hash"]),
                vout=int(coin["index"]),
                value=int(coin["value"]),
                script_pubkey=bytes.fromhex(str(coin["script"])),
                height=int(coin["height"]),
                coinbase=bool(coin["coinbase"]),
            )
            for coin in response.json()
        ]

    def mature_coinbases(self, address: str, tip: int, needed: int) -> list[Utxo]:
        """Unspent, mature coinbase outputs paying `address`, oldest first, until their value
        reaches `needed` satoshi.

        The fallback for a persistent devnet chain: bcoin 1.0.2's address index answers nothing
        on a LevelDB chain (it works in memory), while the UTXO set itself is sound. Coinbases
        pay output 0, and `gettxout` (mempool included) says whether it is still unspent.
        """
        found: list[Utxo] = []
        total = 0
        for height in range(1, tip + 2 - COINBASE_MATURITY):
            block_hash = self.call("getblockhash", height)
            coinbase = self.call("getblock", block_hash, 1)["tx"][0]
            out = self.call("gettxout", coinbase, 0, True)
            if not out:
                continue
            script = out["scriptPubKey"]
            paid_to = script.get("address") or (script.get("addresses") or [None])[0]
            if paid_to != address:
                continue
            value = int(Decimal(str(out["value"])) * 100_000_000)
            found.append(Utxo(coinbase, 0, value, bytes.fromhex(script["hex"]), height, True))
            total += value
            if total >= needed:
                break
        return found


# --------------------------------------------------------------------------- process


def bitcoin_argv(port: int, *, prefix: Path | None) -> list[str]:
    """Command line of the launcher; `prefix=None` keeps the chain in memory.

    The API key goes in the environment (:data:`API_KEY_ENV`), not here: the command line is
    visible in `ps` and recorded in the pid file and the log.
    """
    argv = [
        node_executable(),
        str(chain_tools_dir() / "bcoin-regtest.js"),
        "--http-host=127.0.0.1",
        f"--http-port={port}",
        "--index-tx",
        "--index-address",
        "--no-wallet",
    ]
    if prefix is not None:
        argv.append(f"--prefix={prefix}")
    return argv


def start_bitcoin(
    manager: ProcessManager,
    *,
    api_key: str,
    port: int = DEFAULT_PORT,
    prefix: Path | None = None,
    detach: bool = False,
) -> ProcessRecord:
    """Start bcoin and wait for its first `getblockcount` answer."""
    if prefix is not None:
        prefix.mkdir(parents=True, exist_ok=True)
    rpc = BitcoinRpc(f"http://127.0.0.1:{port}", api_key)
    return manager.start(
        PROCESS_NAME,
        bitcoin_argv(port, prefix=prefix),
        ready=lambda: rpc.call("getblockcount", timeout=2.0) is not None,
        port=port,
        env={**os.environ, API_KEY_ENV: api_key},
        detach=detach,
    )


def bootstrap(rpc: BitcoinRpc, *, blocks: int = SETUP_BLOCKS, address: str | None = None) -> int:
    """Mine to the faucet until the chain is `blocks` high (a persisted chain may already be)."""
    height = rpc.height()
    if height < blocks:
        rpc.generate(blocks - height, address or faucet_key().address)
    return rpc.height()


def mine_forever(
    rpc: BitcoinRpc, address: str, interval: float, stop: threading.Event
) -> None:  # pragma: no cover - exercised through the miner process
    """Mine one block every `interval` seconds until `stop` is set; survive node hiccups."""
    while not stop.wait(interval):
        try:
            rpc.generate(1, address)
        except (httpx.HTTPError, RuntimeError):
            # The node may be restarting or busy; the next tick tries again.
            continue
