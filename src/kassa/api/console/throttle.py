"""Throttling failed console sign-ins, per client address and per key prefix.

After `LIMIT` refused sign-ins within `WINDOW` from one client address, or naming one key
prefix (the public part of ``kassa_<prefix>_<secret>``), further sign-ins from that address or
for that prefix are answered 429 with ``Retry-After`` until the oldest failure leaves the
window — without checking the key, so guessing costs the same whether the guess is right.
A successful sign-in does not clear the count: a guesser who holds one valid key cannot use it
to reset the count of another.

The counts live in the process, not the database: no migration is reserved for them, a count
is only ever a few timestamps, and a restart forgetting them costs an attacker at most one more
window. With several API processes behind a proxy each keeps its own counts, so one address
gets at most ``LIMIT`` failures per process per window; that bound is what the docs state
(docs/console.md, *Security*). The clock is the process's monotonic one: the counts measure
elapsed time, not Kassa's business clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from kassa.apikeys.service import TOKEN_PREFIX

LIMIT = 10
WINDOW = 300.0
"""Seconds: 10 refused sign-ins per 5 minutes."""
MAX_TRACKED = 10_000
"""Subjects kept at most (the oldest dropped first): a flood of addresses cannot grow memory."""


def subjects(client: str | None, api_key: str) -> list[str]:
    """What a sign-in attempt is counted against: its address, and its key's prefix if the key
    is shaped like one."""
    found = [f"addr:{client or 'unknown'}"]
    if api_key.startswith(TOKEN_PREFIX):
        prefix = api_key[len(TOKEN_PREFIX) :].split("_", 1)[0]
        if prefix:
            found.append(f"key:{prefix[:32]}")
    return found


class SignInThrottle:
    def __init__(
        self,
        limit: int = LIMIT,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str]) -> int | None:
        """Seconds until a sign-in for `keys` is heard again, or None when it is heard now."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                failures = self._recent(key, now) if key in self._failures else deque()
                if len(failures) >= self.limit:
                    wait = max(wait, failures[0] + self.window - now)
        return max(1, math.ceil(wait)) if wait > 0 else None

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                failures = self._recent(key, now)
                failures.append(now)
                self._failures[key] = self._failures.pop(key)  # the newest last
            while len(self._failures) > MAX_TRACKED:
                del self._failures[next(iter(self._failures))]

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures
