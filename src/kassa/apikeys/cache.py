"""Live keys recently authenticated, so that a busy API does not look its key up on every
request.

A request's key was one query in a transaction of its own (on SQLite a turn at the write lock)
before the route's own transaction. Here a key that was found live is remembered for
`TTL_SECONDS`, under the SHA-256 of its whole token (the token itself is never kept): the same
token within that time is the same live key without a query. What is never remembered: an
unknown, wrong or malformed token, and a revoked key. So every refusal is decided by the
database, as before.

Revocation: `service.revoke_key` forgets the key in the cache of the database it revoked it in,
so in the process that revokes it (tests, an admin route) the next request is refused at once.
Another process serving the same database (`kassa keys revoke` is a separate process, and
`kassa serve --workers N` runs several) refuses it within `TTL_SECONDS`: that bound is the price
of the cache, and it is short.

There is one cache per database engine (`for_engine`), so apps on different databases in one
process never share keys.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

if TYPE_CHECKING:
    # Only for annotations: `service` imports this module to forget revoked keys.
    from kassa.apikeys.service import ApiKey

TTL_SECONDS = 2.0
"""How long a live key is taken on trust: also the longest a revoked key keeps working in a
process other than the one that revoked it."""
MAX_KEYS = 10_000
"""Distinct tokens remembered at once; past it, the oldest are dropped."""


@dataclass(frozen=True, slots=True)
class _Entry:
    key: ApiKey
    until: float


class KeyCache:
    def __init__(
        self,
        ttl_seconds: float = TTL_SECONDS,
        max_keys: int = MAX_KEYS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.monotonic = monotonic
        """Seconds on a clock that never goes back (a test may set its own)."""
        self._max_keys = max_keys
        self._entries: dict[bytes, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> ApiKey | None:
        """The live key `token` was authenticated as, if that was less than the TTL ago."""
        entry = self._entries.get(_digest(token))
        if entry is None or entry.until <= self.monotonic():
            return None
        return entry.key

    def remember(self, token: str, key: ApiKey) -> None:
        """Remember that `token` is the live `key` (never call it for a revoked key)."""
        if key.revoked_at is not None:
            raise ValueError("a revoked key is never remembered")
        now = self.monotonic()
        with self._lock:
            if len(self._entries) >= self._max_keys:
                self._evict(now)
            self._entries[_digest(token)] = _Entry(key, now + self.ttl_seconds)

    def forget(self, prefix: str) -> None:
        """Drop the key with this prefix (it was just revoked)."""
        with self._lock:
            for digest in [d for d, e in self._entries.items() if e.key.prefix == prefix]:
                del self._entries[digest]

    def _evict(self, now: float) -> None:
        """Drop the expired entries, then the oldest half if that was not enough."""
        expired = [digest for digest, entry in self._entries.items() if entry.until <= now]
        for digest in expired:
            del self._entries[digest]
        if len(self._entries) >= self._max_keys:
            oldest = sorted(self._entries, key=lambda digest: self._entries[digest].until)
            for digest in oldest[: len(oldest) // 2 + 1]:
                del self._entries[digest]


_CACHES: weakref.WeakKeyDictionary[Engine, KeyCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def for_engine(engine: Engine) -> KeyCache:
    """The key cache of the database `engine` talks to (made on first use)."""
    with _CACHES_LOCK:
        cache = _CACHES.get(engine)
        if cache is None:
            cache = _CACHES[engine] = KeyCache()
        return cache


def forget(engine: Engine, prefix: str) -> None:
    """Drop a revoked key from the cache of `engine`, if it has one."""
    cache = _CACHES.get(engine)
    if cache is not None:
        cache.forget(prefix)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
