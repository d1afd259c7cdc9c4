"""Several nodes per chain: one `ChainScanner` (and `MempoolSource`) over nodes in priority order.

Rules (docs/deposits.md, "Several nodes per chain"):
* Each ``head`` walks the nodes in priority order and reads from the first that answers and is
  not behind: a timeout, an error or a malformed answer marks a node ``down`` for
  ``retry_after_seconds``, after which it is asked again — so the primary takes over again as
  soon as it answers well.
* Never backwards: a node whose tip is below ``floor()`` (the watcher's checkpoint) is
  ``behind`` and not read for new blocks; it would make the watcher rewind credited deposits
  as if the chain had reorganised. A node more than ``behind_blocks`` below a standby node's
  tip at the last probe (every ``probe_every_seconds``) is behind too: stalled, it would stall
  the watcher. If every node is behind or down, `NoUsableNode` is raised and the watcher waits
  for its next tick.
* Blocks are read from the node whose head was read; if it fails mid-tick, the next node that
  has the block (its tip at least that high) serves it.
* Each node's health — state, tip, round-trip time, failures in a row, the last error — is
  handed to ``on_health`` after every head, for GET /v1/health and the metrics. URLs are shown
  without credentials.
Single-node installs do not use this wrapper: one URL keeps the plain scanner.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from kassa.chains.network import Chain
from kassa.chains.scanning import (
    ChainBlock,
    ChainHead,
    ChainScanner,
    MempoolSource,
    PoolSnapshot,
    TxFate,
)

_R = TypeVar("_R")


class NoUsableNode(Exception):
    """Every node of the chain is down or behind the checkpoint."""


class NodeState(StrEnum):
    ACTIVE = "active"
    """Read from now."""
    STANDBY = "standby"
    """Healthy, not read (a node before it in priority is)."""
    BEHIND = "behind"
    """Answers, but its tip is below the watcher's checkpoint."""
    DOWN = "down"
    """Its last request failed; asked again after ``retry_after_seconds``."""


@dataclass(frozen=True, slots=True)
class NodeHealth:
    priority: int
    url: str
    """Without user name or password."""
    state: NodeState
    height: int | None
    latency_ms: int | None
    errors: int
    """Failures in a row."""
    last_error: str | None
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class ChainNode:
    url: str
    scanner: ChainScanner
    mempool: MempoolSource | None = None


def public_url(url: str) -> str:
    """`url` without credentials (they never go to logs, health or metrics)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class NodeSet:
    """The nodes of one chain with their health; thread-safe (block and mempool threads)."""

    def __init__(
        self,
        chain: Chain,
        nodes: Sequence[ChainNode],
        *,
        floor: Callable[[], int],
        retry_after_seconds: float = 10.0,
        probe_every_seconds: float = 30.0,
        behind_blocks: int = 3,
        on_health: Callable[[list[NodeHealth]], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not nodes:
            raise ValueError(f"{chain} needs at least one node")
        self.chain = chain
        self.nodes = tuple(nodes)
        self.floor = floor
        self.retry_after_seconds = retry_after_seconds
        self.probe_every_seconds = probe_every_seconds
        self.behind_blocks = behind_blocks
        self.on_health = on_health
        self._monotonic = monotonic
        self._lock = threading.Lock()
        now = datetime.now(UTC)
        self._health = [
            NodeHealth(i, public_url(n.url), NodeState.STANDBY, None, None, 0, None, now)
            for i, n in enumerate(self.nodes)
        ]
        self._retry_at = [0.0] * len(self.nodes)
        self.active = 0
        self._next_probe = 0.0
        self._probe_due = True

    def health(self) -> list[NodeHealth]:
        with self._lock:
            return list(self._health)

    # ------------------------------------------------------------------ bookkeeping

    def _note(self, index: int, **changes: Any) -> None:
        with self._lock:
            self._health[index] = replace(
                self._health[index], checked_at=datetime.now(UTC), **changes
            )

    def _failed(self, index: int, error: BaseException) -> None:
        with self._lock:
            old = self._health[index]
            self._retry_at[index] = self._monotonic() + self.retry_after_seconds
        self._note(
            index,
            state=NodeState.DOWN,
            errors=old.errors + 1,
            # An error may quote the URL, user name and password included: never show those.
            last_error=f"{type(error).__name__}: {error}".replace(self.nodes[index].url, old.url)[
                :500
            ],
            latency_ms=None,
        )

    def _may_try(self, index: int) -> bool:
        with self._lock:
            return (
                self._health[index].state is not NodeState.DOWN
                or self._monotonic() >= self._retry_at[index]
            )

    def _timed(self, index: int, call: Callable[[ChainNode], _R]) -> _R:
        started = self._monotonic()
        try:
            result = call(self.nodes[index])
        except Exception as error:
            self._failed(index, error)
            raise
        self._note(index, latency_ms=round((self._monotonic() - started) * 1000), errors=0)
        return result

    # ------------------------------------------------------------------ reading

    def head(self) -> ChainHead:
        floor = self.floor()
        chosen: ChainHead | None = None
        problems = []
        for index in range(len(self.nodes)):
            if chosen is not None:
                self._standby(index, floor)
                continue
            if not self._may_try(index):
                problems.append(f"{self._health[index].url} down")
                continue
            try:
                head = self._timed(index, lambda node: node.scanner.head())
            except Exception:
                problems.append(f"{self._health[index].url}: {self._health[index].last_error}")
                continue
            lowest = max(floor, self._best_standby() - self.behind_blocks)
            if head.height < lowest:
                self._note(index, state=NodeState.BEHIND, height=head.height)
                problems.append(
                    f"{self._health[index].url} is at block {head.height}, behind "
                    f"{'the checkpoint' if head.height < floor else 'another node'}"
                )
                continue
            self._note(index, state=NodeState.ACTIVE, height=head.height, last_error=None)
            self.active = index
            chosen = head
            self._probe_due = self._monotonic() >= self._next_probe
            if self._probe_due:
                self._next_probe = self._monotonic() + self.probe_every_seconds
        self._publish()
        if chosen is None:
            raise NoUsableNode(f"no usable {self.chain} node: " + "; ".join(problems))
        return chosen

    def _best_standby(self) -> int:
        """The highest tip a healthy standby node showed at the last probe."""
        with self._lock:
            return max(
                (
                    h.height
                    for h in self._health
                    if h.state is NodeState.STANDBY and h.height is not None
                ),
                default=-1,
            )

    def _standby(self, index: int, floor: int) -> None:
        """A node after the active one: standby; its tip and latency refreshed when a probe
        is due (every ``probe_every_seconds``), so health shows whether it could take over."""
        if not (self._probe_due and self._may_try(index)):
            if self._health[index].state is NodeState.ACTIVE:
                self._note(index, state=NodeState.STANDBY)
            return
        try:
            tip = self._timed(index, lambda node: node.scanner.head()).height
        except Exception:
            return
        state = NodeState.BEHIND if tip < floor else NodeState.STANDBY
        self._note(index, state=state, height=tip, last_error=None)

    def read(self, height: int, call: Callable[[ChainNode], _R]) -> _R:
        """`call` on the active node; if it fails, on the next node that has block `height`."""
        try:
            return self._timed(self.active, call)
        except Exception as error:
            last: Exception = error
        for index in range(len(self.nodes)):
            if index == self.active or not self._may_try(index):
                continue
            try:
                tip = self._timed(index, lambda node: node.scanner.head()).height
                if tip < max(height, self.floor()):
                    self._note(index, state=NodeState.BEHIND, height=tip)
                    continue
                result = self._timed(index, call)
            except Exception as error:
                last = error
                continue
            self._note(self.active, state=NodeState.DOWN)
            self._note(index, state=NodeState.ACTIVE, height=tip)
            self.active = index
            self._publish()
            return result
        self._publish()
        raise last

    def any(self, call: Callable[[ChainNode], _R]) -> _R:
        """`call` on the active node, else on each other node in priority order."""
        order = [self.active, *(i for i in range(len(self.nodes)) if i != self.active)]
        last: Exception | None = None
        for index in order:
            if not self._may_try(index):
                continue
            try:
                return self._timed(index, call)
            except Exception as error:
                last = error
        raise last or NoUsableNode(f"every {self.chain} node is down")

    def _publish(self) -> None:
        if self.on_health is not None:
            self.on_health(self.health())


class FailoverScanner:
    """`ChainScanner` over a `NodeSet`."""

    def __init__(self, nodes: NodeSet) -> None:
        self.nodes = nodes

    @property
    def chain(self) -> Chain:
        return self.nodes.chain

    def head(self) -> ChainHead:
        return self.nodes.head()

    def block_hash(self, height: int) -> str | None:
        return self.nodes.read(height, lambda node: node.scanner.block_hash(height))

    def block(self, height: int, watched: frozenset[str]) -> ChainBlock:
        return self.nodes.read(height, lambda node: node.scanner.block(height, watched))


class FailoverMempool:
    """`MempoolSource` over a `NodeSet`: the active node's pool, another's if it fails."""

    def __init__(self, nodes: NodeSet) -> None:
        if any(node.mempool is None for node in nodes.nodes):
            raise ValueError("every node needs a mempool source")
        self.nodes = nodes

    @property
    def chain(self) -> Chain:
        return self.nodes.chain

    def pool(self, watched: frozenset[str]) -> PoolSnapshot:
        return self.nodes.any(lambda node: _pool_of(node).pool(watched))

    def fate(self, txid: str) -> TxFate:
        return self.nodes.any(lambda node: _pool_of(node).fate(txid))


def _pool_of(node: ChainNode) -> MempoolSource:
    if node.mempool is None:
        raise ValueError(f"{public_url(node.url)} has no mempool source")
    return node.mempool
