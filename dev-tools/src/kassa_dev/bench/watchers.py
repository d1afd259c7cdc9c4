"""`kassa bench watchers`: how fast each deposit watcher follows its chain with 100 000 watched
addresses, next to how fast the same blocks can be fetched at all.

Each database of `--db` is created once, fresh, by the migrations, with one customer account per
address index, and shared by the chains (one Kassa install watching them all). Then per chain
(BTC on bcoin regtest, ETH on ganache, TRON on Kassa's simulator; each node started fresh on a
free port in a temporary directory and stopped afterwards):

1. derive `--addresses` deposit addresses through the real `HdDeriver` of the devnet account
   key, one at a time: **addresses derived/s**;
2. pay a seeded random sample of them with real signed transactions: `--deposits-per-block`
   deposits in every other block of `--blocks` blocks (empty blocks between), plus empty blocks
   until the last deposit is final; with `--mainnet-blocks` every one of those blocks also
   carries mainnet-sized unrelated traffic (`_watch_nodes.MAINNET_FILLER`: 2,000 BTC outputs,
   200 ETH transactions of which 100 USDT transfers, 300 TRON transfers);
3. fetch exactly those blocks without the watcher: the bare per-block RPC requests of the
   chain's scanner (after one unmeasured warm-up pass), then ``scanner.block(h, watched)`` of a
   fresh scanner: **raw fetch blocks/s**;
4. per database: load the chain's addresses (customer i gets address i; in bulk, the last
   `--allocate` through `addresses.get_or_create`, measured), then run a fresh production
   `Watcher` from the range start to the tip, ticked until every deposit is credited:
   **watcher blocks/s and deposits/s**, and their ratio to the raw fetch, which is the
   watcher's own overhead (database work, matching, pricing);
5. verify that every paid deposit was recorded as paid and credited exactly once, and nothing
   else (a failure prints FAIL and makes the exit code 1).

It is a benchmark, not a test: no speed is asserted. Run it as `python -m kassa_dev.bench.watchers`
(or `kassa bench watchers`); `--help` lists the options.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import traceback
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from kassa.chains.network import Chain
from kassa.db import Database, make_engine
from kassa.db.migrate import upgrade
from kassa.deposits.addresses import match_key
from kassa.deposits.derive import HdDeriver
from kassa.deposits.runtime import build_scanner, derivers
from kassa.deposits.settings import ChainsSettings
from kassa_dev.bench._args import at_least, chains
from kassa_dev.bench._databases import (
    DEFAULT_PG_ADMIN_URL,
    POSTGRES,
    SQLITE,
    Target,
    postgres_target,
    sqlite_target,
)
from kassa_dev.bench._progress import Progress
from kassa_dev.bench._signals import interrupts_deferred, sigterm_as_interrupt
from kassa_dev.bench._watch_addresses import (
    Customers,
    Derived,
    derive,
    load_addresses,
    load_customers,
)
from kassa_dev.bench._watch_fetch import bare_fetch, close_scanner, measure_bare, measure_scanner
from kassa_dev.bench._watch_fund import FundedRange, fund, funded_offsets, plan
from kassa_dev.bench._watch_nodes import MAINNET_FILLER, LocalChain, start_chain
from kassa_dev.bench._watch_report import (
    ChainRun,
    DatabaseRun,
    chain_figures,
    chain_header,
    chart_svg,
    document,
    summary_table,
    watcher_table,
    write_json,
)
from kassa_dev.bench._watch_run import run_watcher
from kassa_dev.bench._watch_verify import verify

# Rough costs on the project's 2-vCPU machine under load, for the run ETA only.
NODE_START_SECONDS = 5.0
DERIVE_PER_SECOND = 2_500.0
BULK_ROWS_PER_SECOND = 12_000.0
FUND_SECONDS_PER_DEPOSIT = 0.07
FUND_SECONDS_PER_BLOCK = 0.02
FILL_SECONDS_PER_TRANSFER = 0.005
FETCH_SECONDS_PER_BLOCK = 0.02
ALLOCATE_SECONDS_EACH = 0.01
WATCH_SECONDS_PER_BLOCK = 0.05
WATCH_SECONDS_PER_DEPOSIT = 0.06
VERIFY_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class Options:
    chains: tuple[Chain, ...]
    addresses: int
    blocks: int
    deposits_per_block: int
    allocate: int
    databases: tuple[str, ...]
    pg_url: str
    seed: int
    out: Path | None
    mainnet_blocks: bool = False
    prefetch_blocks: int | None = None
    """Overrides the watcher's ``prefetch_blocks`` (0: no fetcher thread); None keeps it."""

    def filler(self, chain: Chain) -> int:
        """Unrelated transfers in each block of the range."""
        return MAINNET_FILLER[chain] if self.mainnet_blocks else 0

    @property
    def deposits(self) -> int:
        return len(funded_offsets(self.blocks)) * self.deposits_per_block

    def customers_seconds(self) -> float:
        return 2 * self.addresses / BULK_ROWS_PER_SECOND

    def addresses_seconds(self) -> float:
        return self.addresses / BULK_ROWS_PER_SECOND + self.allocate * ALLOCATE_SECONDS_EACH

    def watcher_seconds(self) -> float:
        return (
            self.blocks * WATCH_SECONDS_PER_BLOCK
            + self.deposits * WATCH_SECONDS_PER_DEPOSIT
            + VERIFY_SECONDS
        )

    def planned_seconds(self) -> float:
        per_chain = (
            NODE_START_SECONDS
            + self.addresses / DERIVE_PER_SECOND
            + self.deposits * FUND_SECONDS_PER_DEPOSIT
            + self.blocks * (FUND_SECONDS_PER_BLOCK + 3 * FETCH_SECONDS_PER_BLOCK)
            + self.blocks
            * FILL_SECONDS_PER_TRANSFER
            * max(map(self.filler, self.chains), default=0)
            + (self.addresses_seconds() + self.watcher_seconds()) * len(self.databases)
        )
        return per_chain * len(self.chains) + self.customers_seconds() * len(self.databases)


@dataclass(slots=True)
class BenchDatabase:
    """A database under test, shared by the chains (one Kassa install watching them all)."""

    name: str
    where: str = ""
    db: Database | None = None
    customers: Customers | None = None
    error: str | None = None


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    progress = Progress(options.planned_seconds())
    runs: list[ChainRun] = []
    workdir = Path(tempfile.mkdtemp(prefix="kassa-bench-watchers-"))
    try:
        with sigterm_as_interrupt(), ExitStack() as stack:
            databases = [
                _open_database(name, options, stack, progress) for name in options.databases
            ]
            for chain in options.chains:
                runs.append(_bench_chain(chain, options, databases, workdir, progress))
    except KeyboardInterrupt:
        print("\ninterrupted: nodes stopped, bench databases removed", file=sys.stderr)
        return 130
    finally:
        with interrupts_deferred():
            shutil.rmtree(workdir, ignore_errors=True)
    _report(runs, options)
    return 0 if runs and all(run.ok for run in runs) else 1


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="kassa bench watchers",
        description="Measure the deposit watchers (blocks/s, deposits/s) against the raw fetch "
        "rate of the same blocks, on the local chains.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--chains", type=chains, default="btc,eth,tron", help="comma-separated chains"
    )
    parser.add_argument(
        "--addresses", type=at_least(1), default=100_000, help="watched addresses per chain"
    )
    parser.add_argument(
        "--blocks",
        type=at_least(1),
        default=100,
        help="blocks in the range (every other one paid)",
    )
    parser.add_argument(
        "--deposits-per-block", type=at_least(1), default=5, help="deposits in a paid block"
    )
    parser.add_argument(
        "--allocate",
        type=at_least(0),
        default=300,
        help="of the addresses, how many go through addresses.get_or_create (measured)",
    )
    parser.add_argument(
        "--db", choices=(SQLITE, POSTGRES, "both"), default="both", help="databases to measure"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--seed", type=int, default=1, help="seed of the deposit plan")
    parser.add_argument(
        "--mainnet-blocks",
        action="store_true",
        help="fill every block with mainnet-sized unrelated traffic (BTC 2,000 outputs, ETH 200 "
        "transactions with 100 USDT transfers, TRON 300 transfers)",
    )
    parser.add_argument(
        "--prefetch-blocks",
        type=at_least(0),
        default=None,
        help="the watcher's prefetch_blocks (0: no fetcher thread; default: the production "
        "setting, 50)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="write watchers.json and .svg here"
    )
    args = parser.parse_args(argv)
    if args.allocate > args.addresses:
        parser.error("--allocate cannot exceed --addresses")
    deposits = len(funded_offsets(args.blocks)) * args.deposits_per_block
    if deposits > args.addresses:
        parser.error(f"{deposits:,} deposits need at least as many --addresses")
    databases = (SQLITE, POSTGRES) if args.db == "both" else (args.db,)
    return Options(
        chains=args.chains,
        addresses=args.addresses,
        blocks=args.blocks,
        deposits_per_block=args.deposits_per_block,
        allocate=args.allocate,
        databases=databases,
        pg_url=args.pg_url,
        seed=args.seed,
        out=args.out,
        mainnet_blocks=args.mainnet_blocks,
        prefetch_blocks=args.prefetch_blocks,
    )


# --------------------------------------------------------------------------- databases


def _target(name: str, options: Options) -> AbstractContextManager[Target]:
    return postgres_target(options.pg_url) if name == POSTGRES else sqlite_target()


def _open_database(
    name: str, options: Options, stack: ExitStack, progress: Progress
) -> BenchDatabase:
    """A fresh database built by the migrations, with one customer per address index; removed
    when `stack` closes (also on Ctrl-C)."""
    bench = BenchDatabase(name)
    progress.step(
        f"{name}: migrate, load {options.addresses:,} customer accounts",
        options.customers_seconds(),
    )
    try:
        target = stack.enter_context(_target(name, options))
        bench.where = target.where
        db = Database(make_engine(target.url))
        stack.callback(db.dispose)
        upgrade(db.engine)
        bench.customers = load_customers(db, options.addresses, datetime.now(UTC), progress)
        bench.db = db
        progress.heartbeat(f"=> {bench.where}: customers loaded in {bench.customers.seconds:.1f} s")
    except Exception as error:  # reported for every chain; the other database still runs
        bench.error = f"{type(error).__name__}: {error}"
        traceback.print_exc(file=sys.stderr)
        progress.line(f"{name}: FAILED — {bench.error}")
    return bench


# --------------------------------------------------------------------------- one chain


def _bench_chain(
    chain: Chain,
    options: Options,
    databases: Sequence[BenchDatabase],
    workdir: Path,
    progress: Progress,
) -> ChainRun:
    run = ChainRun(chain, options.addresses)
    try:
        progress.step(f"{chain}: starting the node", NODE_START_SECONDS)
        node = start_chain(chain, workdir / chain.value)
        try:
            _measure_chain(run, node, options, databases, progress)
        finally:
            with interrupts_deferred():
                node.stop()
    except KeyboardInterrupt:
        raise
    except Exception as error:  # one chain's failure is reported, the others still run
        run.error = f"{type(error).__name__}: {error}"
        traceback.print_exc(file=sys.stderr)
        progress.line(f"{chain}: FAILED — {run.error}")
    return run


def _measure_chain(
    run: ChainRun,
    node: LocalChain,
    options: Options,
    databases: Sequence[BenchDatabase],
    progress: Progress,
) -> None:
    chain = run.chain
    # The devnet account key of the chain (`ChainsSettings()` defaults), as `kassa up` uses.
    deriver = derivers(ChainsSettings())[chain]
    progress.step(
        f"{chain}: deriving {options.addresses:,} addresses through HdDeriver",
        options.addresses / DERIVE_PER_SECOND,
    )
    derived = derive(deriver, options.addresses, progress)
    run.derive_seconds = derived.seconds
    progress.heartbeat(f"=> {derived.per_second:,.0f} addresses derived/s")

    filler = options.filler(chain)
    progress.step(
        f"{chain}: paying {options.deposits:,} deposits over {options.blocks:,} blocks"
        + (f", each with {filler:,} unrelated transfers" if filler else ""),
        options.deposits * FUND_SECONDS_PER_DEPOSIT + options.blocks * FUND_SECONDS_PER_BLOCK,
    )
    settings = node.settings()
    layout = plan(
        chain, derived.addresses, options.blocks, options.deposits_per_block, options.seed
    )
    heads = build_scanner(settings, chain)
    try:
        funded = fund(
            node,
            layout,
            lambda: heads.head().final_height,
            progress,
            filler=filler,
            seed=options.seed,
        )
    finally:
        close_scanner(heads)
    run.range_start, run.range_end = funded.start, funded.end
    run.funded_blocks, run.deposits = funded.funded_blocks, len(funded.deposits)
    run.funding_seconds = funded.seconds
    progress.heartbeat(
        f"=> blocks {funded.start:,}…{funded.end:,}: {run.deposits:,} deposits in "
        f"{funded.funded_blocks:,} blocks ({funded.seconds:.1f} s)"
    )

    _measure_fetch(run, settings, funded, derived, progress, warm_up=True)
    for bench in databases:
        run.databases.append(
            _bench_database(bench, run, node, deriver, derived, funded, options, progress)
        )
        _measure_fetch(run, settings, funded, derived, progress, warm_up=False)


def _measure_fetch(
    run: ChainRun,
    settings: ChainsSettings,
    funded: FundedRange,
    derived: Derived,
    progress: Progress,
    *,
    warm_up: bool,
) -> None:
    """One pass of the two baselines over the range (after a warm-up pass the first time)."""
    chain = run.chain
    steps = "warm-up, bare RPC, scanner.block" if warm_up else "bare RPC, scanner.block, again"
    progress.step(
        f"{chain}: raw fetch of the {funded.blocks:,} blocks ({steps})",
        (3 if warm_up else 2) * funded.blocks * FETCH_SECONDS_PER_BLOCK,
    )
    tune_process()
    fetch, close = bare_fetch(chain, settings)
    try:
        if warm_up:
            measure_bare(fetch, funded.start, funded.end, "warm-up (not measured)", progress)
        bare = measure_bare(fetch, funded.start, funded.end, "bare RPC", progress)
    finally:
        close()
    watched = frozenset(match_key(chain, address) for address in derived.addresses)
    scanner = build_scanner(settings, chain)
    try:
        scanned = measure_scanner(scanner, funded.start, funded.end, watched, progress)
    finally:
        close_scanner(scanner)
    run.bare_passes.append(bare)
    run.scanner_passes.append(scanned)
    progress.heartbeat(
        f"=> bare RPC {bare.blocks_per_second:,.0f} blocks/s, scanner.block "
        f"{scanned.blocks_per_second:,.0f} blocks/s ({scanned.transfers:,} transfers)"
    )


def tune_process() -> None:
    """The collector as `kassa watch` sets it (`kassa.collector`), before each measured pass,
    so that the baselines and the watcher run alike. An older tree without that module (the
    "before" side of a comparison) keeps the interpreter's defaults, as its watcher did."""
    try:
        from kassa.collector import tune_gc
    except ImportError:
        return
    tune_gc()


# --------------------------------------------------------------------------- one database


def _bench_database(
    bench: BenchDatabase,
    run: ChainRun,
    node: LocalChain,
    deriver: HdDeriver,
    derived: Derived,
    funded: FundedRange,
    options: Options,
    progress: Progress,
) -> DatabaseRun:
    chain, name = run.chain, bench.name
    result = DatabaseRun(name, bench.where)
    if bench.db is None or bench.customers is None:
        result.error = f"database setup failed: {bench.error}"
        return result
    try:
        progress.step(
            f"{chain}/{name}: load {options.addresses:,} addresses "
            f"({options.allocate:,} of them through get_or_create)",
            options.addresses_seconds(),
        )
        result.population = load_addresses(
            bench.db,
            deriver,
            derived,
            bench.customers,
            options.allocate,
            datetime.now(UTC),
            progress,
        )
        progress.heartbeat(
            f"=> bulk load {result.population.bulk_seconds:.1f} s; "
            f"{result.population.allocated_per_second:,.0f} addresses allocated/s"
        )
        progress.step(
            f"{chain}/{name}: a fresh watcher from block {funded.start:,} to {funded.end:,}",
            options.watcher_seconds(),
        )
        tune_process()
        watcher = run_watcher(
            bench.db,
            node.settings(),
            chain,
            funded.start,
            funded.end,
            len(funded.deposits),
            node.node_pid,
            progress,
            prefetch_blocks=options.prefetch_blocks,
        )
        result.watcher = watcher
        progress.heartbeat(
            f"=> {watcher.blocks:,} blocks, {watcher.credited:,} credited in "
            f"{watcher.seconds:.2f} s: {watcher.blocks_per_second:,.1f} blocks/s, "
            f"{watcher.deposits_per_second:,.1f} deposits/s"
        )
        result.checks = verify(bench.db, chain, funded.deposits)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # reported in the table; the next database still runs
        result.error = f"{type(error).__name__}: {error}"
        traceback.print_exc(file=sys.stderr)
        progress.line(f"{chain}/{name}: FAILED — {result.error}")
    for check in result.checks:
        progress.heartbeat(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    verdict = "verified" if result.verified else "FAIL: not verified"
    progress.line(f"{chain}/{name}: {verdict}")
    return result


# --------------------------------------------------------------------------- report


def _report(runs: Sequence[ChainRun], options: Options) -> None:
    for run in runs:
        print()
        print(chain_header(run))
        if run.error is not None:
            print(f"FAILED: {run.error}")
        print(chain_figures(run))
        if run.databases:
            print(watcher_table(run))
    print("\nSummary (blocks/s and deposits/s of the watcher over the whole run):")
    print(summary_table(runs))
    failed = [
        f"{run.chain}/{db.database}" for run in runs for db in run.databases if not db.verified
    ] + [str(run.chain) for run in runs if run.error is not None]
    if failed:
        print(f"\nFAIL: {', '.join(failed)}: see the checks above")
    if options.out is not None:
        as_dict = asdict(options)
        as_dict["pg_url"] = make_url(options.pg_url).render_as_string(hide_password=True)
        as_dict["chains"] = [str(chain) for chain in options.chains]
        write_json(options.out / "watchers.json", document(runs, as_dict))
        (options.out / "watchers.svg").write_text(chart_svg(runs), encoding="utf-8")
        print(f"\nfigures written to {options.out / 'watchers.json'} and watchers.svg")


if __name__ == "__main__":
    raise SystemExit(main())
