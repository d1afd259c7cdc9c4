"""`kassa bench http-cost`: the server CPU one API request costs, one request at a time.

Throughput under wrk (`kassa.bench.api`) moves with the machine's load; the CPU a request costs
the serving process moves much less. This starts the real `kassa serve` (uvicorn, uvloop,
httptools) on a fresh database, sends it requests one at a time over one keep-alive connection,
and reads the process's CPU (user + system, all threads, from ``/proc``) around each batch:

* ``healthz``: ``GET /healthz`` (no key, no database): the HTTP stack alone;
* ``balance``: ``GET /v1/accounts/{id}/balance`` (a cached key, one read);
* ``usage``: ``POST /v1/accounts/{id}/usage``, one event, its own Idempotency-Key and event id.

``--compare DIR`` also starts a second server whose ``kassa`` package comes from ``DIR`` (e.g. a
``git archive`` of an older commit's ``src``) on the same database, and alternates batches
between the two, so both sides see the same machine at the same moments. It prints, per scenario
and side, the median CPU ms per request over the batches (with min–max) and the load average.
The client runs in this process: its CPU is not counted.

Run it as `python -m kassa_dev.bench.http_cost` (or `kassa bench http-cost`); `--help` lists the
options.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import kassa
from kassa.db import Database
from kassa_dev.bench._cpu import process_cpu_seconds
from kassa_dev.bench._databases import (
    DEFAULT_PG_ADMIN_URL,
    POSTGRES,
    SQLITE,
    Target,
    postgres_target,
    sqlite_target,
)
from kassa_dev.bench._progress import Progress
from kassa_dev.bench._setup import prepare
from kassa_dev.bench.api import _children, _free_port, _issue_key

SCENARIOS = ("healthz", "balance", "usage")
ACCOUNTS = 8
START_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True, slots=True)
class Side:
    name: str
    source: Path | None
    """Where its `kassa` package comes from (None: this interpreter's own)."""


@dataclass
class Server:
    side: Side
    port: int
    pids: list[int]
    connection: http.client.HTTPConnection
    sent: int = 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kassa bench http-cost", description=__doc__)
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--batches", type=int, default=10, help="batches per side and scenario")
    parser.add_argument("--batch", type=int, default=60, help="requests per batch")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured requests per scenario")
    parser.add_argument("--compare", type=Path, default=None, help="a `src` dir to compare with")
    parser.add_argument("--pg-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args(argv)
    sides = [Side("after", None)]
    if args.compare is not None:
        sides.insert(0, Side("before", args.compare.resolve()))
    scenarios = [s for s in args.scenarios.split(",") if s]
    progress = Progress(0)
    results: dict[str, object] = {}
    for db_name in [d for d in args.db.split(",") if d]:
        target = postgres_target(args.pg_url) if db_name == POSTGRES else sqlite_target()
        with target as t:
            results[db_name] = _measure(t, sides, scenarios, args, progress)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


def _measure(
    target: Target,
    sides: Sequence[Side],
    scenarios: Sequence[str],
    args: argparse.Namespace,
    progress: Progress,
) -> dict[str, object]:
    if target.name not in (SQLITE, POSTGRES):
        raise ValueError(target.name)
    db = Database.from_url(target.url)
    try:
        prepare(db, ACCOUNTS, progress)
        token = _issue_key(db)
    finally:
        db.dispose()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="kassa-http-cost-") as work, ExitStack() as stack:
        servers = [
            stack.enter_context(_server(target.url, side, Path(work) / side.name)) for side in sides
        ]
        for scenario in scenarios:
            for server in servers:
                for _ in range(args.warmup):
                    _request(server, scenario, token)
            per_side: dict[str, list[float]] = {s.side.name: [] for s in servers}
            loads = [os.getloadavg()[0]]
            for round_ in range(args.batches):
                # Alternate which side goes first, so neither always follows the other.
                order = servers if round_ % 2 == 0 else list(reversed(servers))
                for server in order:
                    before = _cpu(server.pids)
                    for _ in range(args.batch):
                        _request(server, scenario, token)
                    per_side[server.side.name].append(
                        (_cpu(server.pids) - before) * 1000 / args.batch
                    )
            loads.append(os.getloadavg()[0])
            line = [f"{target.name} {scenario}:"]
            for name, values in per_side.items():
                line.append(
                    f"{name} {statistics.median(values):.3f} ms/req "
                    f"({min(values):.3f}–{max(values):.3f})"
                )
            line.append(f"load {min(loads):.1f}–{max(loads):.1f}")
            progress.line("  ".join(line))
            figures[scenario] = {"cpu_ms_per_request": per_side, "load": loads}
    return figures


def _cpu(pids: Sequence[int]) -> float:
    """CPU seconds of the processes so far: per thread from ``schedstat`` (nanoseconds), so a
    batch of fast requests is not lost in ``/proc/<pid>/stat``'s 10 ms ticks. A thread that ends
    between two readings loses its share (the thread pool's threads live for the whole run)."""
    total = 0.0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            total += process_cpu_seconds(pid) or 0.0
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as file:
                    total += int(file.read().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):
                continue
    return total


def _request(server: Server, scenario: str, token: str) -> None:
    server.sent += 1
    n = server.sent
    account = f"bench-user-{n % ACCOUNTS}"
    headers = {"Authorization": f"Bearer {token}"}
    body: bytes | None = None
    if scenario == "healthz":
        method, path, headers = "GET", "/healthz", {}
    elif scenario == "balance":
        method, path = "GET", f"/v1/accounts/{account}/balance"
    elif scenario == "usage":
        method, path = "POST", f"/v1/accounts/{account}/usage"
        event = f"{server.side.name}-{uuid.uuid4().hex}"
        headers["Idempotency-Key"] = event
        headers["Content-Type"] = "application/json"
        body = json.dumps(
            {
                "events": [
                    {
                        "event_id": event,
                        "amount": {"amount": "0.001", "asset": "USD"},
                        "description": "bench",
                    }
                ]
            }
        ).encode()
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    try:
        server.connection.request(method, path, body=body, headers=headers)
        answer = server.connection.getresponse()
    except (ConnectionError, http.client.RemoteDisconnected):
        # uvicorn closes a keep-alive connection idle for 5 s (while the other side ran).
        server.connection.close()
        server.connection.request(method, path, body=body, headers=headers)
        answer = server.connection.getresponse()
    data = answer.read()
    if answer.status >= 300:
        raise RuntimeError(f"{server.side.name} {method} {path}: {answer.status} {data[:300]!r}")


@contextmanager
def _server(url: str, side: Side, workdir: Path) -> Iterator[Server]:
    workdir.mkdir(parents=True)
    port = _free_port()
    env = {
        **os.environ,
        "KASSA_DATABASE_URL": url,
        "KASSA_DATA_DIR": str(workdir / "data"),
        "KASSA_HOST": "127.0.0.1",
        "KASSA_PORT": str(port),
    }
    # Absolute paths: the server runs in `workdir`, where a relative PYTHONPATH finds nothing
    # (and the editable install's tree would be served instead).
    source = side.source or Path(kassa.__file__).resolve().parent.parent
    inherited = [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(source), *inherited])
    code = (
        "import kassa, sys; print(kassa.__file__, file=sys.stderr); "
        "from kassa.cli import main; main()"
    )
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", code, "serve"],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(port, process, workdir / "server.log")
        served = (workdir / "server.log").read_text(errors="replace").splitlines()[0]
        if not served.startswith(str(source)):
            raise RuntimeError(f"the {side.name} server runs {served}, not {source}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        yield Server(side, port, [process.pid, *_children(process.pid)], connection)
        connection.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kassa serve exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            url = f"http://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"kassa serve did not answer within {START_TIMEOUT_SECONDS:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
