"""Where a database route's body runs: on a few threads of its own, not one thread per request.

FastAPI runs a plain `def` route in anyio's shared thread pool, up to 40 threads at once. For
the routes whose body is database work only (a usage POST, a balance read, a hold), one thread
per request in flight is the wrong shape: the threads and the event loop take turns at the one
GIL, every round trip to the database gives it up and takes it back, and with 8 or 32 requests
in flight each one waits behind the others' turns, including while it holds the house revenue
row locked in PostgreSQL. Measured with `kassa bench api` on two cores (docs/benchmarks.md,
"Third round: database threads"): with the collector tuned as well, the usage POST on
PostgreSQL at c=8 went from about 230 req/s with a p99 near 100 ms to about 300 req/s with a
p99 near 42 ms with three or four such threads, with less CPU per request; two were too few to
overlap the round trips, six already lost part of the gain.

A router whose routes are database work only is declared with ``route_class=DatabaseRoute``:
its route bodies run on anyio worker threads, but at most ``database_threads`` of them at once
(the ``database_threads`` setting, `kassa.config.Settings`); the other requests wait on
the event loop for a turn, which costs nothing. Routes that call out of the process (rate
sources, chain nodes, webhook receivers) stay on the shared pool, so a slow outside call never
holds a database turn.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar
from fastapi.routing import APIRoute

DEFAULT_DATABASE_THREADS = 4
"""Database route bodies running at once in one process, unless the settings say otherwise."""

_limiter: RunVar[CapacityLimiter] = RunVar("kassa_database_threads")
_size: RunVar[int] = RunVar("kassa_database_threads_size")


def set_database_threads(size: int) -> None:
    """Use `size` database threads in the running event loop (the app's lifespan calls it)."""
    if size < 1:
        raise ValueError("database_threads must be at least 1")
    _size.set(size)
    limiter = _limiter.get(None)
    if limiter is not None:
        limiter.total_tokens = size


def database_limiter() -> CapacityLimiter:
    """The running event loop's limiter of database route bodies."""
    limiter = _limiter.get(None)
    if limiter is None:
        limiter = CapacityLimiter(_size.get(DEFAULT_DATABASE_THREADS))
        _limiter.set(limiter)
    return limiter


def on_database_threads(endpoint: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """`endpoint` (a plain function) as a coroutine function that runs it on a worker thread
    under the database limiter. FastAPI reads the parameters through ``__wrapped__``."""

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        call = functools.partial(endpoint, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=database_limiter())

    return run


class DatabaseRoute(APIRoute):
    """An `APIRoute` whose plain-function endpoint runs under the database limiter (an
    ``async def`` endpoint runs as it is: it is not database work on a thread)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = on_database_threads(endpoint)
        super().__init__(path, endpoint, **kwargs)
