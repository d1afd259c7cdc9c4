"""The port each chain adapter implements for the watcher: about five calls, no more.

Everything UTXO-, EVM- or TRON-specific stays behind it. The watcher never sends one request
per address: `block` returns every transfer in the block and the watcher matches them against
its in-memory set of addresses.
"""

from __future__ import annotations

from typing import Protocol

from kassa.chains.network import Chain
from kassa.deposits.model import ChainBlock, ChainHead


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
        """The block at `height` with its transfers. ``watched`` (match keys, see
        `kassa.deposits.addresses.match_key`) lets an adapter skip expensive work, such as
        resolving BTC input addresses, for transfers that pay nobody Kassa watches; it may
        return more."""
        ...
