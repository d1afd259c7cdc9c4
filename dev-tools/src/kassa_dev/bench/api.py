"""`kassa bench api`: the HTTP API under load, as `kassa serve` runs it.

For each database asked for (a SQLite file, a fresh PostgreSQL database), it migrates, opens and
funds ``--accounts`` customer accounts (bench-user-N), issues an API key, starts
``kassa serve --workers N`` on a free loopback port, and drives it with wrk (Debian's package,
installed by ``./dev setup``) through `api_load.lua`, for each ``--concurrency``:

* ``usage``: ``POST /v1/accounts/{id}/usage`` with one event, a unique Idempotency-Key and a
  unique event id per request, spread over the accounts;
* ``balance``: ``GET /v1/accounts/{id}/balance``;
* ``hold``: ``POST /v1/accounts/{id}/holds`` (one cent, an hour), a unique key per request;
* ``healthz``: ``GET /healthz`` (no key, no database): the HTTP stack alone.

It prints req/s, p50, p99, max and errors per run with the load average (1 min) before and
after, and the API processes' CPU per request. Afterwards it checks the books: every usage
request answered 2xx is charged exactly once (its event is in ``usage_event`` and was reported
``charged``), every usage batch is one balanced usage journal entry, each has one completed
idempotency record, and at most the requests in flight when wrk stopped (≤ concurrency per run)
were committed without their answer being counted.

Run it as `python -m kassa_dev.bench.api` (or `kassa bench api`); `--help` lists the options.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from kassa.apikeys import service as apikeys
from kassa.db import Database
from kassa.ledger.tables import idempotency_record, ledger_posting, ledger_transaction
from kassa.spending.tables import usage_batch, usage_event
from kassa_dev.bench._args import at_least
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
from kassa_dev.bench._report import machine
from kassa_dev.bench._setup import prepare
from kassa_dev.bench._signals import sigterm_as_interrupt
from kassa_dev.bench._verify import Check

SCENARIOS = ("usage", "balance", "hold", "healthz")
LUA_SCRIPT = Path(__file__).with_name("api_load.lua")
RESULT_MARKER = "KASSA_BENCH "
REFUSAL_MARKER = "KASSA_REFUSAL "
START_TIMEOUT_SECONDS = 180.0
USAGE_OPERATION = "api.usage.record"


@dataclass(frozen=True, slots=True)
class Options:
    databases: tuple[str, ...]
    workers: int
    duration: int
    warmup: int
    concurrency: tuple[int, ...]
    scenarios: tuple[str, ...]
    accounts: int
    threads: int
    pg_url: str
    json_path: Path | None
    py_spy: Path | None


@dataclass(frozen=True, slots=True)
class LoadRun:
    scenario: str
    concurrency: int
    requests: int
    seconds: float
    ok: int
    refused: int
    socket_errors: int
    timeouts: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    load_before: float
    load_after: float
    server_cpu_ms_per_request: float | None

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.refused + self.socket_errors + self.timeouts


@dataclass
class DatabaseRun:
    name: str
    where: str = ""
    workers: int = 1
    runs: list[LoadRun] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    error: str | None = None

    @property
    def consistent(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is missing: ./dev setup installs it (apt-get install wrk)", file=sys.stderr)
        return 2
    runs_per_db = len(options.concurrency) * len(options.scenarios)
    progress = Progress(len(options.databases) * (30 + runs_per_db * (options.duration + 2)))
    results: list[DatabaseRun] = []
    try:
        with sigterm_as_interrupt():
            for name in options.databases:
                results.append(_bench_database(name, options, progress))
    except KeyboardInterrupt:
        print("\ninterrupted: server stopped, bench database removed", file=sys.stderr)
        return 130
    _report(results, options)
    ok = all(run.error is None and run.consistent for run in results)
    return 0 if ok else 1


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="kassa bench api",
        description="The API under load (wrk): usage posting, balance read, hold create and "
        "/healthz, at several concurrencies, then a check of the books.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--db",
        default="postgres",
        help="databases to run on, comma-separated: sqlite, postgres",
    )
    parser.add_argument("--workers", type=at_least(1), default=1, help="API processes")
    parser.add_argument("--duration", type=at_least(1), default=10, help="seconds per run")
    parser.add_argument(
        "--warmup",
        type=at_least(0),
        default=2,
        help="seconds of usage posting and balance reads before the measured runs, not "
        "measured (the first requests compile every statement: SQLAlchemy caches them)",
    )
    parser.add_argument("--concurrency", default="8,32", help="open connections, per run")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"of {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--accounts", type=at_least(1), default=64, help="funded accounts")
    parser.add_argument("--threads", type=at_least(1), default=2, help="wrk threads")
    parser.add_argument("--pg-url", default=DEFAULT_PG_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        help="profile the API processes with py-spy during each run; collapsed stacks go to "
        "this directory (<db>-<scenario>-c<N>.txt)",
    )
    args = parser.parse_args(argv)
    return Options(
        databases=_choices(parser, "--db", args.db, (SQLITE, POSTGRES)),
        workers=args.workers,
        duration=args.duration,
        warmup=args.warmup,
        concurrency=tuple(_positive_ints(parser, args.concurrency)),
        scenarios=_choices(parser, "--scenarios", args.scenarios, SCENARIOS),
        accounts=args.accounts,
        threads=args.threads,
        pg_url=args.pg_url,
        json_path=args.json,
        py_spy=args.py_spy,
    )


def _choices(
    parser: argparse.ArgumentParser, flag: str, text: str, known: Sequence[str]
) -> tuple[str, ...]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in known]
    if unknown or not chosen:
        parser.error(f"{flag}: choose from {', '.join(known)}; got {text!r}")
    return tuple(name for name in known if name in chosen)


def _positive_ints(parser: argparse.ArgumentParser, text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        parser.error(f"--concurrency: positive integers, comma-separated; got {text!r}")
    return values


def _bench_database(name: str, options: Options, progress: Progress) -> DatabaseRun:
    result = DatabaseRun(name, workers=options.workers)
    with _target(name, options) as target:
        result.where = target.where
        database = Database.from_url(target.url, pool_size=2)
        try:
            progress.step(f"{name}: migrating, funding {options.accounts} accounts", 20)
            prepare(database, options.accounts, progress)
            token = _issue_key(database)
            warmups: list[LoadRun] = []
            with tempfile.TemporaryDirectory(prefix="kassa-bench-api-") as scratch:
                workdir = Path(scratch)
                run_tag = uuid.uuid4().hex[:10]
                with _server(target.url, options.workers, workdir) as (base_url, pids):
                    if options.warmup:
                        progress.step(f"{name}: warming up", options.warmup * 2)
                        warmup = replace(options, duration=options.warmup, py_spy=None)
                        for scenario in ("usage", "balance"):
                            warmups.append(
                                _drive(
                                    base_url,
                                    pids,
                                    scenario,
                                    max(options.concurrency),
                                    warmup,
                                    token=token,
                                    tag=f"{run_tag}-warmup-{scenario}",
                                    out=workdir / "usage-warmup",
                                    profile=None,
                                )
                            )
                    for concurrency in options.concurrency:
                        for scenario in options.scenarios:
                            progress.step(
                                f"{name}: {scenario}, c={concurrency}", options.duration + 1
                            )
                            run = _drive(
                                base_url,
                                pids,
                                scenario,
                                concurrency,
                                options,
                                token=token,
                                tag=f"{run_tag}-{scenario}-c{concurrency}",
                                out=workdir / f"usage-c{concurrency}",
                                profile=_profile_path(options, name, scenario, concurrency),
                            )
                            result.runs.append(run)
                            progress.line(_run_line(run))
                progress.step(f"{name}: checking the books", 5)
                result.checks = _verify(database, [*warmups, *result.runs], workdir)
        except Exception as error:
            result.error = f"{type(error).__name__}: {error}"
        finally:
            database.dispose()
    return result


def _target(name: str, options: Options) -> AbstractContextManager[Target]:
    return postgres_target(options.pg_url) if name == POSTGRES else sqlite_target()


def _profile_path(options: Options, name: str, scenario: str, concurrency: int) -> Path | None:
    if options.py_spy is None:
        return None
    options.py_spy.mkdir(parents=True, exist_ok=True)
    return options.py_spy / f"{name}-{scenario}-c{concurrency}.txt"


def _issue_key(database: Database) -> str:
    with database.transaction() as conn:
        _key, token = apikeys.create_key(
            conn,
            name="bench-api",
            scopes=[apikeys.Scope.ACCOUNTS_READ, apikeys.Scope.ACCOUNTS_WRITE],
            customer_account_id=None,
            now=datetime.now(UTC),
        )
    return token


@contextmanager
def _server(url: str, workers: int, workdir: Path) -> Iterator[tuple[str, list[int]]]:
    """`kassa serve` on a free loopback port, stopped (SIGTERM, then SIGKILL) on the way out;
    yields its base URL and the pids of its processes (the workers' too)."""
    port = _free_port()
    env = {
        **os.environ,
        "KASSA_DATABASE_URL": url,
        "KASSA_DATA_DIR": str(workdir / "data"),
        "KASSA_HOST": "127.0.0.1",
        "KASSA_PORT": str(port),
    }
    command = [sys.executable, "-c", "from kassa.cli import main; main()", "serve"]
    if workers > 1:
        command += ["--workers", str(workers)]
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, process, workdir / "server.log")
        pids = [process.pid, *_children(process.pid)]
        yield base_url, pids
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kassa serve exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"kassa serve did not answer within {START_TIMEOUT_SECONDS:.0f} s")


def _children(pid: int) -> list[int]:
    """The descendants of `pid` (uvicorn's worker processes), from /proc."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", encoding="ascii") as file:
                    kids = [int(child) for child in file.read().split()]
            except OSError:
                continue
            found += kids
            pending += kids
    return found


def _drive(
    base_url: str,
    pids: Sequence[int],
    scenario: str,
    concurrency: int,
    options: Options,
    *,
    token: str,
    tag: str,
    out: Path,
    profile: Path | None,
) -> LoadRun:
    env = {
        **os.environ,
        "KASSA_BENCH_MODE": scenario,
        "KASSA_BENCH_TOKEN": token,
        "KASSA_BENCH_ACCOUNTS": str(options.accounts),
        "KASSA_BENCH_RUN": tag,
        "KASSA_BENCH_OUT": str(out),
    }
    command = [
        "wrk",
        f"-t{min(options.threads, concurrency)}",
        f"-c{concurrency}",
        f"-d{options.duration}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        base_url,
    ]
    load_before = os.getloadavg()[0]
    cpu_before = _cpu_seconds(pids)
    with _profiler(pids, options.duration, profile):
        finished = subprocess.run(  # noqa: S603 - wrk with our own arguments
            command, env=env, capture_output=True, text=True, check=False
        )
    cpu_after = _cpu_seconds(pids)
    load_after = os.getloadavg()[0]
    figures = _wrk_figures(finished.stdout, finished.stderr)
    for line in finished.stdout.splitlines():
        if line.startswith(REFUSAL_MARKER):
            print(f"  a refusal ({scenario}): {line[len(REFUSAL_MARKER) :]}", file=sys.stderr)
    requests = int(figures["requests"])
    cpu = None
    if cpu_before is not None and cpu_after is not None and requests:
        cpu = (cpu_after - cpu_before) * 1000 / requests
    return LoadRun(
        scenario=scenario,
        concurrency=concurrency,
        requests=requests,
        seconds=figures["duration_us"] / 1e6,
        ok=int(figures["ok"]),
        refused=int(figures["refused"]),
        socket_errors=int(figures["connect"] + figures["read"] + figures["write"]),
        timeouts=int(figures["timeout"]),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        load_before=load_before,
        load_after=load_after,
        server_cpu_ms_per_request=cpu,
    )


@contextmanager
def _profiler(pids: Sequence[int], seconds: int, out: Path | None) -> Iterator[None]:
    """py-spy sampling the API process that serves (the last one: uvicorn's worker when there
    are several) while the block runs; its collapsed stacks go to `out`."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [
        spy,
        "record",
        "-p",
        str(pids[-1]),
        "-d",
        str(seconds),
        "-r",
        "200",
        "-f",
        "raw",
        "--gil",
    ]
    profiler = subprocess.Popen(  # noqa: S603 - py-spy with our own arguments
        [*command, "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        profiler.wait(timeout=seconds + 30)


def _cpu_seconds(pids: Sequence[int]) -> float | None:
    total = 0.0
    for pid in pids:
        seconds = process_cpu_seconds(pid)
        if seconds is None:
            return None
        total += seconds
    return total


def _wrk_figures(stdout: str, stderr: str) -> dict[str, float]:
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            figures: dict[str, float] = json.loads(line[len(RESULT_MARKER) :])
            return figures
    raise RuntimeError(f"wrk printed no figures: {stdout[-1000:]} {stderr[-1000:]}")


def _verify(database: Database, runs: Sequence[LoadRun], workdir: Path) -> list[Check]:
    usage_runs = [run for run in runs if run.scenario == "usage"]
    if not usage_runs:
        return [Check("no usage run to check", True, "")]
    answered = _answered_events(workdir)
    counted_ok = sum(run.ok for run in usage_runs)
    in_flight = sum(run.concurrency for run in usage_runs)
    with database.engine.connect() as conn:
        stored = {
            row.event_id: row.batch_id
            for row in conn.execute(select(usage_event.c.event_id, usage_event.c.batch_id))
        }
        batches = {
            row.id: row.transaction_id
            for row in conn.execute(
                select(usage_batch.c.id, usage_batch.c.transaction_id).where(
                    usage_batch.c.charged_events > 0
                )
            )
        }
        sums: dict[Any, int] = defaultdict(int)
        for row in conn.execute(
            select(ledger_posting.c.transaction_id, ledger_posting.c.amount)
            .join(ledger_transaction, ledger_transaction.c.id == ledger_posting.c.transaction_id)
            .where(ledger_transaction.c.kind == "usage")
        ):
            sums[row.transaction_id] += int(row.amount)
        records: dict[str | None, int] = {
            row.outcome: int(row.n)
            for row in conn.execute(
                select(idempotency_record.c.outcome, func.count().label("n"))
                .where(idempotency_record.c.operation == USAGE_OPERATION)
                .group_by(idempotency_record.c.outcome)
            )
        }
    not_charged = [event for event, status in answered.items() if status != "charged"]
    missing = [event for event in answered if event not in stored]
    extra = len(stored) - len(answered)
    return [
        Check(
            "every 2xx usage answer was counted and names its event as charged",
            len(answered) == counted_ok and not not_charged,
            f"{len(answered):,} answers recorded, wrk counted {counted_ok:,} 2xx; "
            f"not 'charged': {not_charged[:3] or 'none'}",
        ),
        Check(
            "every 2xx usage answer's event is in the books (once: the primary key)",
            not missing,
            f"missing: {missing[:3] or 'none'}",
        ),
        Check(
            "events committed without a counted answer: at most those in flight at the stop",
            0 <= extra <= in_flight,
            f"{extra} extra (bound {in_flight})",
        ),
        Check(
            "one balanced usage journal entry per batch",
            set(sums) == {t for t in batches.values() if t is not None}
            and len(batches) == len(stored)
            and not any(sums.values()),
            f"{len(batches):,} batches, {len(sums):,} usage entries, "
            f"unbalanced: {sum(1 for s in sums.values() if s)}",
        ),
        Check(
            "one completed idempotency record per usage batch",
            records == {"ok": len(stored)},
            f"records by outcome {records}",
        ),
    ]


def _answered_events(workdir: Path) -> dict[str, str]:
    """Event id → status of every 2xx usage answer wrk's threads wrote down."""
    answered: dict[str, str] = {}
    for path in sorted(workdir.glob("usage-*.*")):
        for line in path.read_text(encoding="ascii").splitlines():
            _status, event, charged = line.split(" ")
            answered[event] = charged
    return answered


def _run_line(run: LoadRun) -> str:
    return (
        f"  {run.scenario} c={run.concurrency}: {run.per_second:,.0f} req/s, "
        f"p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, errors {run.errors}"
    )


def _report(results: Sequence[DatabaseRun], options: Options) -> None:
    print(f"\nmachine: {machine()}; wrk threads {options.threads}, {options.duration} s per run")
    header = (
        "db",
        "procs",
        "scenario",
        "c",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "CPU ms/req",
        "load 1m",
    )
    rows = [
        (
            result.name,
            str(result.workers),
            run.scenario,
            str(run.concurrency),
            f"{run.per_second:,.0f}",
            f"{run.p50_ms:.1f}",
            f"{run.p99_ms:.1f}",
            f"{run.max_ms:.0f}",
            str(run.errors),
            "—"
            if run.server_cpu_ms_per_request is None
            else f"{run.server_cpu_ms_per_request:.2f}",
            f"{run.load_before:.2f}→{run.load_after:.2f}",
        )
        for result in results
        for run in result.runs
    ]
    print(_grid(header, rows))
    for result in results:
        if result.error is not None:
            print(f"\n{result.name}: FAILED: {result.error}")
        for check in result.checks:
            print(f"{result.name}: [{'ok' if check.ok else 'FAILED'}] {check.name}: {check.detail}")
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": machine(), "options": asdict(options), "databases": results}
        options.json_path.write_text(json.dumps(payload, default=_plain, indent=2) + "\n")


def _plain(value: object) -> object:
    if isinstance(value, DatabaseRun):
        return {**asdict(value), "consistent": value.consistent}
    return str(value)


def _grid(header: tuple[str, ...], body: Sequence[tuple[str, ...]]) -> str:
    cells = [header, *body]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["  ".join(t.rjust(w) for t, w in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
