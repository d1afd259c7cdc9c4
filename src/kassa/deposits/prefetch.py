"""Fetch and scan the next blocks while the watcher stores and credits the previous ones.

The watcher's tick reads blocks in order from a `BlockFeed`. With ``depth`` > 0 a thread
fetches and scans them (``scanner.block``) ahead of the tick, at most ``depth`` blocks ahead
(a bounded queue), so waiting on the node overlaps with the tick's database work. The nodes are
separate processes and the client waits on sockets without the GIL, so the overlap is real even
though decoding and SQLAlchemy share one interpreter. With ``depth`` 0 the feed fetches each
block when asked, in the caller's thread (the watcher before prefetching).

The feed only reads: it never touches the database. The tick still checks each block's parent
against its tip and stops at the first one that does not extend it; `close` then discards
whatever was fetched beyond it, so a reorg seen while prefetching never lets a prefetched block
in. A scanner error is raised to the tick at the block where it happened, after every block
fetched before it. The scanner is used by the feed's thread only while the feed is open: the
tick makes no other scanner call in between, so scanners need not be thread-safe.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from dataclasses import dataclass

from kassa.chains.scanning import ChainBlock, ChainScanner

_POLL_SECONDS = 0.1
"""How often a fetcher waiting for room in the queue checks whether it was closed."""


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class _End:
    pass


_END = _End()


class BlockFeed:
    """Blocks ``first``…``last`` of ``scanner``, in order; `next` returns None after the last
    one (or once ``stop`` is set). Use as a context manager: leaving it stops the fetcher."""

    def __init__(
        self,
        scanner: ChainScanner,
        first: int,
        last: int,
        watched: frozenset[str],
        *,
        depth: int,
        stop: threading.Event | None = None,
    ) -> None:
        self.scanner = scanner
        self.watched = watched
        self._next = first
        self._last = last
        self._stop = stop
        self._closed = threading.Event()
        self._queue: queue.Queue[ChainBlock | _Failed | _End] = queue.Queue(maxsize=max(depth, 1))
        self._thread: threading.Thread | None = None
        if depth > 0 and first <= last:
            self._thread = threading.Thread(
                target=self._fetch,
                name=f"kassa-prefetch-{scanner.chain}",
                daemon=True,
            )
            self._thread.start()

    def __enter__(self) -> BlockFeed:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _stopping(self) -> bool:
        return self._closed.is_set() or (self._stop is not None and self._stop.is_set())

    def _put(self, item: ChainBlock | _Failed | _End) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def _fetch(self) -> None:
        try:
            for height in range(self._next, self._last + 1):
                if self._stopping():
                    break
                if not self._put(self.scanner.block(height, self.watched)):
                    return
        except BaseException as error:  # handed to the tick, raised there
            self._put(_Failed(error))
            return
        self._put(_END)

    def waiting(self) -> bool:
        """Whether the next block is still being fetched (never, without a fetcher thread):
        the time to store what the tick holds, in the fetch's shadow."""
        return self._thread is not None and self._queue.empty()

    def next(self) -> ChainBlock | None:
        """The next block, or None when the range is done or the watcher is stopping."""
        if self._thread is None:
            if self._next > self._last or self._stopping():
                return None
            block = self.scanner.block(self._next, self.watched)
            self._next += 1
            return block
        item = self._queue.get()
        while self._stop is not None and self._stop.is_set() and isinstance(item, ChainBlock):
            # Stopping: no further block is taken, but the fetcher's last request is waited
            # for (it ends at the next height), and its error, if it failed, still raised.
            item = self._queue.get()
        if isinstance(item, _Failed):
            self._queue.put_nowait(item)  # the feed stays failed if asked again
            raise item.error
        if isinstance(item, _End):
            self._queue.put_nowait(item)
            return None
        return item

    def close(self) -> None:
        """Stop fetching, drop what was fetched and not taken, and wait for the fetcher (at
        most one node request, bounded by the client's timeout)."""
        self._closed.set()
        if self._thread is None:
            return
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=_POLL_SECONDS)
        self._thread.join()
        self._thread = None
