"""Progress of a watcher that starts far behind its node (a new install with ``start_height``
days back, or a watcher back from downtime): log lines with the blocks done, the rate and the
time left, so an operator can tell a long catch-up from a stuck one.

A catch-up spans many ticks (each scans at most ``max_blocks_per_tick``), so the progress lives
on the watcher between ticks. The clock is the process's monotonic one: these are log lines,
never stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kassa.chains.network import Chain

log = logging.getLogger(__name__)


def duration_text(seconds: float) -> str:
    """``42s``, ``3m07s``, ``5h02m``: what an operator reads at a glance."""
    whole = max(int(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


@dataclass(slots=True)
class Backfill:
    """One catch-up, from the height it started at to the node's head (which moves on)."""

    chain: Chain
    start: int
    """The last block scanned when the catch-up began."""
    target: int
    every_seconds: float
    monotonic: Callable[[], float] = time.monotonic
    started_at: float = field(init=False)
    last_line_at: float = field(init=False)

    def __post_init__(self) -> None:
        self.started_at = self.monotonic()
        self.last_line_at = self.started_at - self.every_seconds  # the first batch says it
        log.info(
            "%s backfill: %d block(s) behind the node (scanned %d, head %d)",
            self.chain,
            self.target - self.start,
            self.start,
            self.target,
        )

    def line(self, scanned: int) -> str:
        done = scanned - self.start
        total = max(self.target - self.start, 1)
        elapsed = self.monotonic() - self.started_at
        rate = done / elapsed if elapsed > 0 else 0.0
        left = max(self.target - scanned, 0)
        eta = duration_text(left / rate) if rate > 0 else "unknown"
        return (
            f"{self.chain} backfill: block {scanned} of {self.target}, {done} of {total} "
            f"({100 * done // total} %), {rate:.1f} blocks/s, about {eta} left"
        )

    def note(self, scanned: int, head: int) -> bool:
        """Record a stored batch; True once the watcher has caught up."""
        self.target = max(self.target, head)
        if scanned >= self.target:
            elapsed = self.monotonic() - self.started_at
            log.info(
                "%s backfill done: %d block(s) in %s",
                self.chain,
                scanned - self.start,
                duration_text(elapsed),
            )
            return True
        if self.monotonic() - self.last_line_at >= self.every_seconds:
            self.last_line_at = self.monotonic()
            log.info("%s", self.line(scanned))
        return False
