"""An in-memory chain implementing `ChainScanner`, shipped next to the real adapters.

It is a fake of Kassa's own port, for fast tests of the watcher's logic (matching, finality,
reorgs, crash replays); the same watcher runs against ganache, bcoin and the TRON simulator in
the chain tests. Blocks are mined explicitly; `reorg` replaces the top blocks with new ones, as
a competing branch would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from kassa.chains.network import Chain
from kassa.chains.scanning import ChainBlock, ChainHead, ChainTransfer


class FakeChain:
    def __init__(self, chain: Chain, start: datetime, *, final_depth: int = 1) -> None:
        self._chain = chain
        self.final_depth = final_depth
        """A block is final once it has this many confirmations."""
        genesis = ChainBlock(0, self._hash("genesis", 0), "0" * 64, start, ())
        self.blocks: list[ChainBlock] = [genesis]
        self._salt = 0

    @property
    def chain(self) -> Chain:
        return self._chain

    @staticmethod
    def _hash(*parts: object) -> str:
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    def mine(self, transfers: Iterable[ChainTransfer] = (), *, seconds: int = 600) -> ChainBlock:
        parent = self.blocks[-1]
        height = parent.height + 1
        self._salt += 1
        block_hash = self._hash(parent.hash, height, self._salt)
        block = ChainBlock(
            height=height,
            hash=block_hash,
            parent_hash=parent.hash,
            time=parent.time + timedelta(seconds=seconds),
            transfers=tuple(transfers),
        )
        self.blocks.append(block)
        return block

    def mine_empty(self, count: int) -> None:
        for _ in range(count):
            self.mine()

    def reorg(self, depth: int) -> list[ChainBlock]:
        """Drop the top `depth` blocks (a competing branch wins); returns what was dropped."""
        dropped = self.blocks[-depth:]
        del self.blocks[-depth:]
        return dropped

    def include_again(self, transfers: Iterable[ChainTransfer]) -> ChainBlock:
        return self.mine([replace(t) for t in transfers])

    # -- ChainScanner --------------------------------------------------------------------

    def head(self) -> ChainHead:
        tip = self.blocks[-1]
        return ChainHead(tip.height, tip.hash, max(tip.height - self.final_depth + 1, -1))

    def block_hash(self, height: int) -> str | None:
        if 0 <= height < len(self.blocks):
            return self.blocks[height].hash
        return None

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        if not 0 <= height < len(self.blocks):
            raise LookupError(f"no block {height} (tip {len(self.blocks) - 1})")
        return self.blocks[height]
