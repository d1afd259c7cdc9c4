"""What `kassa bench watchers` passes between its steps: payments asked for, deposits paid on
chain (what the watcher must find), and the error that stops one chain's run."""

from __future__ import annotations

from dataclasses import dataclass

from kassa.money import Money


class WatchBenchError(RuntimeError):
    """A chain's run cannot go on (node, funding or setup trouble); the others still run."""


@dataclass(frozen=True, slots=True)
class Payment:
    """One deposit to make: `money` (int minor units of its asset) to a watched address."""

    address: str
    money: Money


@dataclass(frozen=True, slots=True)
class PaidDeposit:
    """A payment as it landed on chain: exactly what the watcher has to record and credit."""

    address: str
    asset: str
    """Asset code (``BTC``, ``ETH``, ``USDT-ERC20``, ``TRX``, ``USDT-TRC20``)."""
    amount: int
    """Minor units of `asset`: satoshi, wei, sun, micro-USDT."""
    txid: str
    """As the chain's scanner reports it (``0x…`` on Ethereum, bare hex elsewhere)."""
    position: int
    """The deposit key's position: vout, the token log's ordinal, or -1 for native ETH/TRX."""
    height: int
    """The block it was mined in."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
