"""The garbage collector tuned for a long-running process (the API server, a chain watcher).

Such a process imports and builds hundreds of thousands of objects that live as long as it
does (FastAPI, pydantic, SQLAlchemy, web3 and the other chain libraries). With the interpreter's
defaults (700, 10, 10) the collector runs every 700 allocations and walks all of them on every
full collection, a pause of every thread: a request makes hundreds of short-lived objects, and
a watcher decoding a mainnet block (hundreds of transactions of JSON) tens of thousands, so a
full collection came every few blocks. `tune_gc` freezes what is alive once the process is
built out of the collector's generations (it is never collected, and never walked again) and
collects the youngest generation every 10,000 allocations. Cycles made later are still found.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (10_000, 50, 100)
"""The collector's thresholds once tuned (the interpreter's defaults: 700, 10, 10)."""


def tune_gc() -> None:
    """Freeze what is alive now out of the collector's reach and collect the young generation
    less often. Call once the process is built, before it starts its work."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
