"""The chain nodes' health as the watcher last saw it (table ``chain_node``).

The watcher process owns the `kassa.chains.failover.NodeSet`; the API and the metrics run
elsewhere, so the watcher writes each node's state here — when a state changes, else at most
every ``every_seconds`` — and GET /v1/health and the metrics read it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from kassa.chains.failover import NodeHealth
from kassa.chains.network import Chain
from kassa.db import Database
from kassa.deposits.tables import chain_node, watcher_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    chain: Chain
    priority: int
    url: str
    state: str
    height: int | None
    latency_ms: int | None
    errors: int
    last_error: str | None
    checked_at: datetime


def checkpoint_height(database: Database, chain: Chain) -> int:
    """The watcher's checkpoint (-1 before its first block): no node below it is read."""
    with database.transaction() as conn:
        height = conn.execute(
            select(watcher_checkpoint.c.height).where(watcher_checkpoint.c.chain == chain.value)
        ).scalar_one_or_none()
    return -1 if height is None else int(height)


class NodeRecorder:
    """``on_health`` of a `NodeSet`: writes the nodes' health when it matters."""

    def __init__(
        self,
        database: Database,
        chain: Chain,
        *,
        every_seconds: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.chain = chain
        self.every_seconds = every_seconds
        self._monotonic = monotonic
        self._states: tuple[str, ...] = ()
        self._written_at = float("-inf")

    def __call__(self, health: list[NodeHealth]) -> None:
        states = tuple(h.state.value for h in health)
        if states == self._states and self._monotonic() - self._written_at < self.every_seconds:
            return
        try:
            with self.database.transaction() as conn:
                record(conn, self.chain, health)
        except Exception:  # health is for display: never fail a watcher tick over it
            log.exception("could not record the %s nodes' health", self.chain)
            return
        self._states = states
        self._written_at = self._monotonic()


def record(conn: Connection, chain: Chain, health: list[NodeHealth]) -> None:
    conn.execute(delete(chain_node).where(chain_node.c.chain == chain.value))
    conn.execute(
        insert(chain_node),
        [
            {
                "chain": chain.value,
                "priority": h.priority,
                "url": h.url,
                "state": h.state.value,
                "height": h.height,
                "latency_ms": h.latency_ms,
                "errors": h.errors,
                "last_error": h.last_error,
                "checked_at": h.checked_at,
            }
            for h in health
        ],
    )


def node_status(conn: Connection) -> list[NodeStatus]:
    rows = conn.execute(select(chain_node).order_by(chain_node.c.chain, chain_node.c.priority))
    return [
        NodeStatus(
            chain=Chain(row.chain),
            priority=row.priority,
            url=row.url,
            state=row.state,
            height=row.height,
            latency_ms=row.latency_ms,
            errors=row.errors,
            last_error=row.last_error,
            checked_at=row.checked_at,
        )
        for row in rows
    ]
