"""Settings of a simulated TRON chain: genesis, fee schedule, block timing, persistence.

The genesis is deterministic: one private key (default `DEFAULT_GENESIS_KEY_HEX`, a published
development key that must never hold anything real) owns a large TRX balance and the whole
supply of the built-in USDT contract, whose address is derived from the genesis address. Money
reaches other accounts only through transactions signed with that key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import coincurve

from kassa_dev.devnet.tron.codec import address_from_public_key, keccak256

DEFAULT_GENESIS_KEY_HEX = "6b617373612d6465766e65742d74726f6e2d67656e657369732d6b65792d3031"
"""The genesis account's private key (ASCII "kassa-devnet-tron-genesis-key-01"). Devnet only."""

SUN_PER_TRX = 1_000_000
USDT_UNITS = 1_000_000
"""USDT has 6 decimals: 1 USDT is 1_000_000 minor units."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class FeeSchedule:
    """What resources cost. Amounts in sun, sizes in bytes, times in milliseconds."""

    energy_price: int = 420
    """Sun burned per unit of energy (the owner has no staked energy on the devnet)."""
    bandwidth_price: int = 1_000
    """Sun burned per byte when the free daily bandwidth does not cover a transaction."""
    free_bandwidth: int = 600
    """Free bandwidth bytes per account, recovering linearly over `bandwidth_window_ms`."""
    bandwidth_window_ms: int = 86_400_000
    account_create_fee: int = 1_000_000
    """Sun burned when a TRX transfer creates (activates) the recipient account
    (java-tron's `getCreateNewAccountFeeInSystemContract`)."""
    create_account_bandwidth_fee: int = 100_000
    """Sun burned *instead of* the bytes' bandwidth by a transaction that creates an account,
    when the owner has no staked bandwidth (java-tron's `getCreateAccountFee`)."""
    max_fee_limit: int = 15_000_000_000
    """Largest `fee_limit` a transaction may set, in sun."""
    result_size_allowance: int = 64
    """Bytes java-tron adds to a transaction's size for its result when charging bandwidth."""


@dataclass(frozen=True)
class DevnetConfig:
    genesis_key: bytes = bytes.fromhex(DEFAULT_GENESIS_KEY_HEX)
    genesis_trx: int = 1_000_000_000 * SUN_PER_TRX
    """Sun held by the genesis account at block 0."""
    usdt_supply: int = 1_000_000_000 * USDT_UNITS
    """USDT minor units minted to the genesis account at block 0 (the whole supply)."""
    block_interval: float = 3.0
    """Seconds between timer blocks; 0 means blocks are produced only on demand."""
    solid_lag: int = 19
    """Blocks between the head and the solidified block."""
    state_file: Path | None = None
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    clock: Callable[[], int] = wall_clock_ms
    """Milliseconds since the epoch; chain time is this plus the offset `/debug/mine` adds."""

    def __post_init__(self) -> None:
        if len(self.genesis_key) != 32:
            raise ValueError("the genesis key must be 32 bytes")
        if self.solid_lag < 0:
            raise ValueError("solid_lag must be >= 0")
        if self.block_interval < 0:
            raise ValueError("block_interval must be >= 0")

    @property
    def genesis_address(self) -> bytes:
        public_key = coincurve.PrivateKey(self.genesis_key).public_key
        return address_from_public_key(public_key.format(compressed=False))

    @property
    def usdt_address(self) -> bytes:
        """Where the built-in USDT contract lives: derived from the genesis address the way
        java-tron derives a contract address from its creator, so it is stable per genesis key."""
        return b"\x41" + keccak256(b"kassa-devnet-usdt" + self.genesis_address)[-20:]
