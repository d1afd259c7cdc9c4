"""The worker processes' metrics: round durations and errors per loop, rate source failures and
the hot wallets' balances as their nodes report them (docs/operations.md, Metrics).

The worker, the watchers and the payout worker run in processes of their own, without the
API's ``GET /metrics``. Their loops record into `REGISTRY`, one per process, and `serve` gives
such a process a small HTTP listener for it (``[metrics] port``, ``--metrics-port``), with the
same optional bearer token as the API's endpoint. `kassa up`, which runs the loops next to the
API, adds `REGISTRY` to the API's own endpoint instead.

A series appears once its loop has run: a process shows only the loops it runs.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=False)

_ROUND_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
"""From a hold sweep with nothing due (milliseconds) to a daily reconciliation (minutes)."""

ROUND_SECONDS = Histogram(
    "kassa_worker_round_duration_seconds",
    "Duration of one round of a background loop, failed rounds included",
    ("loop",),
    buckets=_ROUND_BUCKETS,
    registry=REGISTRY,
)
ROUND_ERRORS = Counter(
    "kassa_worker_round_errors",
    "Rounds of a background loop that failed (or, for the payout round, reported an error)",
    ("loop",),
    registry=REGISTRY,
)
RATE_SOURCE_FAILURES = Counter(
    "kassa_rate_source_failures",
    "Rate source answers that gave no usable quote, by source, symbol and reason",
    ("source", "symbol", "reason"),
    registry=REGISTRY,
)
HOT_WALLET_BALANCE = Gauge(
    "kassa_hot_wallet_balance",
    "What the node says a payout hot wallet holds, whole units, read by the payout worker",
    ("chain", "asset"),
    registry=REGISTRY,
)
HOT_WALLET_LOW = Gauge(
    "kassa_hot_wallet_low_threshold",
    "[payouts] hot_wallet_low: the balance below which the hot wallet is low, whole units",
    ("chain", "asset"),
    registry=REGISTRY,
)


class Round:
    """One round of a loop being timed; `failed` counts it as an error without raising."""

    def __init__(self, loop: str) -> None:
        self.loop = loop
        self.errors = 0

    def failed(self) -> None:
        self.errors = 1


@contextmanager
def timed_round(loop: str, *, expected: tuple[type[BaseException], ...] = ()) -> Iterator[Round]:
    """Time the block as one round of ``loop``; an exception (other than ``expected`` ones,
    which are a normal outcome such as a standby watcher's) counts as a round error and goes
    on up to the loop's own handling."""
    started = time.perf_counter()
    current = Round(loop)
    try:
        yield current
    except expected:
        raise
    except Exception:
        current.failed()
        raise
    finally:
        ROUND_SECONDS.labels(loop).observe(time.perf_counter() - started)
        if current.errors:
            ROUND_ERRORS.labels(loop).inc()


class _Handler(BaseHTTPRequestHandler):
    token: bytes | None = None

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._answer(404, b"not found\n", "text/plain")
            return
        if self.token is not None:
            given = (self.headers.get("Authorization") or "").encode()
            if not hmac.compare_digest(given, self.token):
                self._answer(
                    401, b"send the metrics token as 'Authorization: Bearer ...'\n", "text/plain"
                )
                return
        self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not logged: one line every 15 s would drown the process's own."""


def serve(host: str, port: int, token: str | None) -> ThreadingHTTPServer:
    """Serve `REGISTRY` at ``http://host:port/metrics`` from a daemon thread until
    ``shutdown()``; with ``token``, only to ``Authorization: Bearer <token>``."""
    handler = type(
        "MetricsHandler", (_Handler,), {"token": f"Bearer {token}".encode() if token else None}
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="kassa-metrics", daemon=True)
    thread.start()
    log.info("metrics at http://%s:%d/metrics", host, server.server_address[1])
    return server
