"""What a chain adapter reports to the deposit watcher, and the port it implements.

A `ChainTransfer` is one value movement to some address in one block, as an adapter reads it: a
BTC output (``position`` = vout), a native ETH/TRX transfer (``position`` = -1, one per
transaction), or a token Transfer log (``position`` = the log index). Adapters report what the
chain says about the watched addresses; dust, fakes and finality rules live in the watcher.

The `ChainScanner` port is three calls. Everything UTXO-, EVM- or TRON-specific stays behind it,
and the watcher never sends one request per address: `block` returns every transfer in a block
to any of the watched addresses, however many there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from kassa.chains.network import Chain

NATIVE_POSITION = -1
"""``position`` of a chain's native transfer within its transaction (ETH value, TRX transfer)."""


class SenderKind(StrEnum):
    KNOWN = "known"
    """One sending address: ETH/TRON ``from``; BTC when every input spends from one address."""
    AMBIGUOUS = "ambiguous"
    """BTC inputs from several addresses (or scripts without an address): no single origin."""


@dataclass(frozen=True, slots=True)
class ChainTransfer:
    """One transfer to an address, as read from a block. ``amount`` is minor units of `asset`."""

    chain: Chain
    asset: str
    """Asset code (``BTC``, ``ETH``, ``USDT-ERC20``, ``TRX``, ``USDT-TRC20``)."""
    txid: str
    position: int
    to_address: str
    amount: int
    sender: str | None
    sender_kind: SenderKind
    success: bool
    """False for a reverted/failed transaction: recorded as ignored, never credited."""
    token_contract: str | None = None
    """The emitting contract for token transfers (canonical or not)."""
    canonical: bool = True
    """False for a Transfer log of a contract that is not Kassa's configured token."""


@dataclass(frozen=True, slots=True)
class ChainBlock:
    height: int
    hash: str
    parent_hash: str
    time: datetime
    transfers: tuple[ChainTransfer, ...]


@dataclass(frozen=True, slots=True)
class ChainHead:
    height: int
    hash: str
    final_height: int
    """The highest block the chain's finality rule treats as final (N confirmations, the
    ``finalized`` tag, or TRON's solidified block)."""


class ChainScanner(Protocol):
    @property
    def chain(self) -> Chain: ...

    def head(self) -> ChainHead:
        """The current tip and the highest final block."""
        ...

    def block_hash(self, height: int) -> str | None:
        """The hash of the block at `height` on the current best chain (None above the tip)."""
        ...

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        """The block at `height` with its transfers to ``watched`` addresses (match keys, see
        `kassa.deposits.addresses.match_key`). The adapters decode nothing else (a mainnet
        block holds thousands of transfers Kassa does not watch); a caller must still match
        what it gets, since the port allows an adapter to return more."""
        ...


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """What a node's mempool holds at one moment, as far as deposits care."""

    txids: frozenset[str]
    """Every transaction in the pool: a seen deposit whose txid is missing has left it."""
    transfers: tuple[ChainTransfer, ...]
    """Transfers of pool transactions to watched addresses, keyed as a block would key them
    (BTC ``txid:vout``; ETH native ``txid:-1``, a direct USDT ``transfer`` call ``txid:0``)."""


class Fate(StrEnum):
    PENDING = "pending"
    """The node still has it unmined (in its pool)."""
    MINED = "mined"
    """In a block of the node's best chain: the block scan takes it from here."""
    GONE = "gone"
    """The node knows it no more: replaced, double-spent or evicted (`TxFate.reason` says)."""


@dataclass(frozen=True, slots=True)
class TxFate:
    fate: Fate
    reason: str = ""
    height: int | None = None
    """The block a mined transaction is in, where the node says (Ethereum)."""


class MempoolSource(Protocol):
    """A chain's unmined transactions. Separate from `ChainScanner`: a mempool entry is a hint
    that money is coming, never a fact the ledger acts on."""

    @property
    def chain(self) -> Chain: ...

    def pool(self, watched: frozenset[str]) -> PoolSnapshot:
        """The pool now; transfers only for ``watched`` match keys."""
        ...

    def fate(self, txid: str) -> TxFate:
        """What became of a transaction that is no longer in the pool."""
        ...
