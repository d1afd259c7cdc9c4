"""Chains and networks: which ledger an address, key or transaction belongs to.

Design:
* `Chain` names the three blockchains Kassa speaks (``btc``, ``eth``, ``tron``); it lives with
  the other asset facts in `kassa.assets` and is re-exported here.
* A *network* is one concrete ledger of a chain. Bitcoin networks differ in their address
  encodings (bech32 HRP, base58 version bytes), so `BtcNetwork` carries those parameters.
  Ethereum networks share every encoding and differ only by EIP-155 chain id, so an
  `EthNetwork` is just a chain id. TRON networks share the ``0x41`` address prefix; `TronNetwork`
  tells the real network from Kassa's local simulator.
* `Network` is the union; every member has a ``chain`` and a readable ``label``.
Nothing here does I/O; it is configuration vocabulary for the chain primitives.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TypeAlias

from kassa.assets import Chain

__all__ = ["ETH_MAINNET", "BtcNetwork", "Chain", "EthNetwork", "Network", "TronNetwork"]


@dataclass(frozen=True, slots=True)
class _BtcParams:
    hrp: str
    p2pkh_version: int
    p2sh_version: int
    wif_version: int


class BtcNetwork(StrEnum):
    """A Bitcoin network and its address encodings.

    Regtest uses testnet's base58 version bytes (``0x6f``/``0xc4``) and its own bech32 HRP
    ``bcrt``, as Bitcoin Core does (the bcoin launcher patches bcoin to the same values).
    """

    MAINNET = "mainnet"
    TESTNET = "testnet"
    REGTEST = "regtest"

    @property
    def chain(self) -> Chain:
        return Chain.BTC

    @property
    def label(self) -> str:
        return f"Bitcoin {self.value}"

    @property
    def hrp(self) -> str:
        """The bech32 human-readable part of native segwit addresses."""
        return _BTC_PARAMS[self].hrp

    @property
    def p2pkh_version(self) -> int:
        return _BTC_PARAMS[self].p2pkh_version

    @property
    def p2sh_version(self) -> int:
        return _BTC_PARAMS[self].p2sh_version

    @property
    def wif_version(self) -> int:
        """The version byte of a WIF-encoded private key."""
        return _BTC_PARAMS[self].wif_version


_BTC_PARAMS = MappingProxyType(
    {
        BtcNetwork.MAINNET: _BtcParams("bc", 0x00, 0x05, 0x80),
        BtcNetwork.TESTNET: _BtcParams("tb", 0x6F, 0xC4, 0xEF),
        BtcNetwork.REGTEST: _BtcParams("bcrt", 0x6F, 0xC4, 0xEF),
    }
)

_ETH_NAMES = MappingProxyType(
    {
        1: "mainnet",
        11155111: "sepolia",
        17000: "holesky",
        1337: "ganache",
        31337: "hardhat",
    }
)

_MAX_CHAIN_ID = 2**64 - 1
"""The largest chain id signers and nodes agree on (EIP-2294 bounds it to 64 bits)."""


@dataclass(frozen=True, slots=True)
class EthNetwork:
    """An Ethereum network, identified by its EIP-155 chain id.

    The chain id is what replay protection signs over, so it is the only identity that
    matters; the name is for messages. eth-tester's chain id is not 1337, so never assume one:
    read ``eth_chainId`` from the node and build ``EthNetwork(chain_id)``.
    """

    chain_id: int

    def __post_init__(self) -> None:
        if type(self.chain_id) is not int or not 0 < self.chain_id <= _MAX_CHAIN_ID:
            raise ValueError(
                f"an Ethereum chain id is a positive 64-bit int, got {self.chain_id!r}"
            )

    @property
    def chain(self) -> Chain:
        return Chain.ETH

    @property
    def name(self) -> str:
        return _ETH_NAMES.get(self.chain_id, f"chain {self.chain_id}")

    @property
    def label(self) -> str:
        return f"Ethereum {self.name}"

    def __str__(self) -> str:
        return self.label


class TronNetwork(StrEnum):
    """A TRON network. All TRON networks share the ``0x41`` address prefix."""

    MAINNET = "mainnet"
    DEVNET = "devnet"
    """Kassa's local java-tron HTTP API simulator (development, tests and the demo)."""

    @property
    def chain(self) -> Chain:
        return Chain.TRON

    @property
    def label(self) -> str:
        return f"TRON {self.value}"


ETH_MAINNET = EthNetwork(1)

Network: TypeAlias = BtcNetwork | EthNetwork | TronNetwork
"""Any network of any chain; ``network.chain`` says which."""
