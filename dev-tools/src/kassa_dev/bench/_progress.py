"""Progress lines for a long benchmark: a line per step, heartbeats, elapsed and ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO

HEARTBEAT_SECONDS = 2.0


def clock_text(seconds: float) -> str:
    """`mm:ss` for a duration in seconds."""
    whole = max(0, round(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


class Progress:
    """Prints `[elapsed] text` lines. The run ETA is a plan (sum of expected step durations)
    consumed as steps begin, so it stays honest even when a step overruns."""

    def __init__(self, planned_seconds: float, out: TextIO | None = None) -> None:
        self._started = time.monotonic()
        self._remaining_plan_seconds = planned_seconds
        self._out = out if out is not None else sys.stdout

    @property
    def elapsed_seconds(self) -> float:
        return time.monotonic() - self._started

    def step(self, label: str, expected_seconds: float) -> None:
        """Announce a step expected to take `expected_seconds`."""
        eta = clock_text(self._remaining_plan_seconds)
        self._remaining_plan_seconds = max(0.0, self._remaining_plan_seconds - expected_seconds)
        self.line(f"{label} (~{expected_seconds:.0f} s; run ETA ~{eta})")

    def line(self, text: str) -> None:
        print(f"[{clock_text(self.elapsed_seconds)}] {text}", file=self._out, flush=True)

    def heartbeat(self, text: str) -> None:
        self.line(f"    {text}")


class Heartbeat:
    """True every `interval_seconds` when polled: for loops that print now and then."""

    def __init__(self, interval_seconds: float = HEARTBEAT_SECONDS) -> None:
        self._interval_seconds = interval_seconds
        self._next = time.monotonic() + interval_seconds

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval_seconds
        return True

    def seconds_until_due(self) -> float:
        return max(0.0, self._next - time.monotonic())
