"""Where an API process spends its CPU, from py-spy's collapsed stacks (`-f raw`): each line is
`frame;frame;… count`, root first, idle samples left out (py-spy's default).

The buckets are the ones the API's costs are discussed in (docs/benchmarks.md, API): the route
body run in the thread pool (and how much of it is SQLAlchemy and the database driver), the
request guard's key lookup, and the event loop (HTTP parsing, middleware, responses).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

# A route body: FastAPI's thread-pool call of a plain route, or a frame of a route module (a
# database route runs on its own threads, `kassa.api.threads`, not through FastAPI's call).
_ROUTE = ("_run_sync_endpoint", "kassa/api/routes/")
BUCKETS = (
    ("route: SQLAlchemy + driver", _ROUTE, ("sqlalchemy/", "psycopg", "sqlite3")),
    ("route: the rest", _ROUTE, ()),
    ("guard: key lookup", ("RequestGuard._authenticate",), ()),
    ("other thread-pool work", ("WorkerThread.run",), ()),
    ("event loop (HTTP, middleware, ASGI)", ("",), ()),
)


def shares(path: Path) -> dict[str, float]:
    """Share of the samples per bucket (the first bucket whose markers a stack has)."""
    counts: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        samples = int(number)
        total += samples
        counts[_bucket(stack)] += samples
    return {name: counts[name] / total for name, _, _ in BUCKETS} if total else {}


def _bucket(stack: str) -> str:
    for name, markers, inner in BUCKETS:
        if any(marker in stack for marker in markers) and (
            not inner or any(frame in stack for frame in inner)
        ):
            return name
    return BUCKETS[-1][0]


def text(path: Path) -> str:
    return ", ".join(f"{name} {share:.0%}" for name, share in shares(path).items())
