"""How `kassa serve` and `kassa up` run the app: uvicorn on uvloop with the httptools parser, in
one process or several.

* uvloop and httptools (C) instead of asyncio's selector loop and the pure-Python h11 parser:
  the event loop's share of a request (parsing, the middleware, writing the answer) is what
  every route pays, and it is the part that runs on the one thread of the loop.
* ``TCP_NODELAY`` on every accepted connection, set here rather than trusted to the loop: with
  Nagle's algorithm on, an answer written in two segments (headers, then body) waits for the
  client's delayed ACK, ~40 ms, and a keep-alive client's median becomes that.
* The garbage collector tuned for a server (`kassa.collector.tune_gc`): what the process
  imported and built before serving is frozen out of the collector's generations, and the
  youngest generation is collected every 10,000 allocations instead of 700. A request makes
  hundreds of short-lived objects; with the defaults the collector ran every few requests and
  walked the whole import-time heap on every full collection, a pause of all threads.
* Several processes (``workers`` > 1): uvicorn binds the port once and starts that many
  processes on it, each building its own app (`worker_app_path` names a factory, which reads
  the same settings from the environment and ``KASSA_CONFIG_FILE``) with its own connection
  pool; the kernel spreads the connections over them. One process is bound by one core (the
  GIL); the database is shared, so what is in the database (idempotency, row locks, the
  ledger) holds across processes exactly as across threads.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kassa.collector import tune_gc

LOOP = "uvloop"
WORKER_HEALTHCHECK_SECONDS = 60
"""How long uvicorn's parent waits for a worker process to answer its ping before killing it as
hung. Its default, 5 s, is shorter than a worker's start (a fresh interpreter importing the
app, the chain libraries included) on a busy machine: the parent then kills every worker
before it is up, and starts another, forever."""


class NoDelayHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, with Nagle's algorithm off on the connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Set TCP_NODELAY on a TCP transport's socket (a Unix socket has no such option)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Serve `app` in this process. uvicorn's loggers write through the handler the command
    installed (`log_config=None`), as the rest of the process does."""
    tune_gc()
    uvicorn.run(app, host=host, port=port, loop=LOOP, http=NoDelayHttpTools, log_config=None)


def serve_workers(worker_app_path: str, *, host: str, port: int, workers: int) -> None:
    """Serve in `workers` processes, each calling the factory at `worker_app_path`
    (``module:function``) for its app."""
    uvicorn.run(
        worker_app_path,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        loop=LOOP,
        http=NoDelayHttpTools,
        log_config=None,
    )
