"""`kassa bench scaleout`: every role of Kassa twice, as separate processes on one PostgreSQL
database and the local chains, under mixed load, while a random process is SIGKILLed and
restarted every ``--kill-every`` seconds.

The fleet: two API processes (`kassa serve`), two general workers (`kassa worker`), two payout
workers (`kassa payout-worker`) and two watchers per chain (`kassa watch --chain X`: one holds
the chain's lease, the other waits for it). Leases are short (``--lease`` seconds, watchers and
payout claims alike) so that takeovers happen within the run. The load (`_scaleout_load`) goes
through the API processes: faucet deposits on the three chains, usage, activations, and
withdrawals approved by an operator key and paid by the payout workers.

Kills follow a deck: the roles in an order shuffled by ``--seed`` (printed), dealt one per
``--kill-every`` seconds, reshuffled when used up, so every role dies once before any dies
twice. A watcher kill hits the chain's active watcher (the lease holder); the time until another
watcher holds the lease is its takeover gap. After ``--minutes`` the load and the kills stop,
the run waits for every deposit to be credited and every withdrawal confirmed, stops the fleet
with SIGTERM and checks: every deposit credited exactly once (deposit rows and ledger against
what the faucet sent), every payout paid exactly once (read from the chain nodes), `kassa
doctor` clean, every takeover within the lease plus one poll interval, no process that ended by
itself. A failed check prints FAIL and makes the exit code 1.

It is a benchmark, not a test, except for its short CI run (tests/deploy/test_scaleout.py).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import func, select

from kassa.apikeys import service as apikeys
from kassa.chains.network import Chain
from kassa.clock import DatabaseClock
from kassa.config import Settings
from kassa.db import Database, make_engine
from kassa.deposits.settings import ChainsSettings
from kassa.deposits.tables import deposit, watcher_checkpoint
from kassa.money import Money, asset
from kassa.payouts.runtime import build_rail
from kassa.payouts.settings import PayoutSettings, SignerSettings
from kassa.payouts.signer import create_key_file, load_local_signer
from kassa.payouts.tables import payout_request
from kassa.wiring import Services
from kassa_dev.bench._args import at_least
from kassa_dev.bench._databases import DEFAULT_PG_ADMIN_URL, postgres_target
from kassa_dev.bench._fleet import KASSA, Fleet, Instance
from kassa_dev.bench._payouts_run import chain_tip, close_client
from kassa_dev.bench._progress import Progress, clock_text
from kassa_dev.bench._scaleout_checks import (
    Check,
    deposits_credited_once,
    doctor,
    payouts_paid_once,
)
from kassa_dev.bench._scaleout_load import Api, ApiStats, Load, SentDeposit
from kassa_dev.bench._signals import interrupts_deferred, sigterm_as_interrupt
from kassa_dev.devnet.testing import (
    BitcoinNode,
    GanacheNode,
    TronNode,
    free_port,
    start_bitcoin_node,
    start_ganache_node,
    start_tron_node,
)

ROLES = ("api", "worker", "payout-worker", "watch-btc", "watch-eth", "watch-tron")
POLL_SECONDS = 0.5
"""Watchers' and payout workers' poll interval in the run."""
BLOCK_SECONDS = 1.0
"""Seconds between BTC blocks (the harness mines them)."""
ETH_BLOCK_SECONDS = 1
"""ganache mines on this timer, not per transaction: in instamine mode, under this load, it
once kept a payout's transaction and a faucet transfer pending for good (sends hung, the next
blocks came empty), which a timed miner has not done."""
LEASE_WATCH_SECONDS = 0.2
PROGRESS_SECONDS = 10.0
READY_SECONDS = 180.0
"""Twelve Python processes starting at once on a busy 2-core machine take a while."""
HOT_FUNDING: dict[Chain, tuple[tuple[str, str, int], ...]] = {
    # Several BTC coins, so that payouts can be in flight at once.
    Chain.BTC: (("BTC", "0.5", 12),),
    Chain.ETH: (("ETH", "20", 1), ("USDT-ERC20", "100000", 1)),
    Chain.TRON: (("TRX", "100000", 1), ("USDT-TRC20", "100000", 1)),
}
"""Per chain: (asset, amount, how many transfers) the faucet sends to the hot wallet."""


@dataclass(frozen=True, slots=True)
class Options:
    minutes: float = 10.0
    kill_every: float = 60.0
    lease: int = 5
    seed: int | None = None
    accounts: int = 6
    deposit_every: float = 3.0
    drain_timeout: float = 180.0
    pg_url: str = DEFAULT_PG_ADMIN_URL


@dataclass(frozen=True, slots=True)
class Kill:
    at: float
    """Seconds since the load started."""
    instance: str
    role: str
    owner: str | None = None
    """A watcher's lease owner name, when it held the lease."""


@dataclass(frozen=True, slots=True)
class Takeover:
    chain: str
    killed: str
    gap_seconds: float | None
    """Seconds from the SIGKILL until another watcher held the lease (None: never)."""
    by: str
    """The instance that took over: the standby twin, or the killed slot restarted."""


@dataclass
class Result:
    seed: int
    options: Options
    seconds: float = 0.0
    drain_seconds: float = 0.0
    deposits_sent: int = 0
    deposits_credited: int = 0
    payouts_requested: int = 0
    payouts_confirmed: int = 0
    usage_events: int = 0
    activations: int = 0
    api: ApiStats = field(default_factory=ApiStats)
    kills: list[Kill] = field(default_factory=list)
    takeovers: list[Takeover] = field(default_factory=list)
    crashes: dict[str, list[int]] = field(default_factory=dict)
    load_errors: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        with sigterm_as_interrupt():
            result = run(options, Progress(options.minutes * 60 + 90))
    except KeyboardInterrupt:
        print("\ninterrupted: processes and nodes stopped, database removed", file=sys.stderr)
        return 130
    print_summary(result)
    return 0 if result.ok else 1


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="kassa bench scaleout",
        description="Every role twice as separate processes on one PostgreSQL and the local "
        "chains, under mixed load, with a random process SIGKILLed and restarted regularly.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration")
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds between kills")
    parser.add_argument(
        "--lease", type=at_least(5), default=5, help="watcher lease and payout claim, seconds"
    )
    parser.add_argument("--seed", type=int, default=None, help="kill order (default: random)")
    parser.add_argument("--accounts", type=at_least(1), default=6, help="customer accounts")
    parser.add_argument(
        "--deposit-every", type=float, default=3.0, help="seconds between faucet deposits"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=180.0, help="seconds to wait for the last credits"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_ADMIN_URL, help="PostgreSQL admin URL")
    args = parser.parse_args(argv)
    return Options(
        minutes=args.minutes,
        kill_every=args.kill_every,
        lease=args.lease,
        seed=args.seed,
        accounts=args.accounts,
        deposit_every=args.deposit_every,
        drain_timeout=args.drain_timeout,
        pg_url=args.pg_url,
    )


# --------------------------------------------------------------------------- the run


@dataclass
class Nodes:
    btc: BitcoinNode
    eth: GanacheNode
    tron: TronNode

    def chains(self) -> ChainsSettings:
        return ChainsSettings.model_validate(
            {
                "btc": {"rpc_url": self.btc.url, "rpc_api_key": SecretStr(self.btc.api_key)},
                "eth": {"rpc_url": self.eth.url, "usdt_contract": self.eth.usdt_address},
                "tron": {"api_url": self.tron.url, "usdt_contract": self.tron.usdt_contract},
            }
        )


def run(
    options: Options,
    progress: Progress,
    workdir: Path | None = None,
    nodes: Nodes | None = None,
) -> Result:
    """One whole run; `workdir` keeps the processes' logs (default: a temporary directory,
    removed afterwards); `nodes` are running local chains to use (default: fresh ones, stopped
    afterwards)."""
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(10**6)
    result = Result(seed, options)
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="kassa-bench-scaleout-"))
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        if nodes is None:
            progress.step("start the local chains (bcoin, ganache, TRON simulator)", 20)
            nodes = _start_nodes(workdir, stack)
        target = stack.enter_context(postgres_target(options.pg_url))
        database = Database(make_engine(target.url, pool_size=2))
        stack.callback(database.dispose)
        env = _environment(options, nodes, target.url, workdir)
        progress.step(f"migrate {target.where}, admin key, rates, hot wallets", 15)
        token = _prepare(env, database, nodes, workdir)
        fleet = _fleet(env, workdir)
        stack.callback(_stop, fleet)
        sent = _load_and_kill(options, result, progress, fleet, nodes, database, token)
        progress.step("stop the fleet (SIGTERM) and check", 30)
        _stop(fleet)
        result.crashes = {i.name: i.exits for i in fleet.instances if i.exits}
        _check(result, options, sent, database, nodes, env)
    return result


def _start_nodes(workdir: Path, stack: ExitStack) -> Nodes:
    btc = stack.enter_context(start_bitcoin_node(workdir / "btc"))
    eth = stack.enter_context(start_ganache_node(workdir / "eth", block_time=ETH_BLOCK_SECONDS))
    tron = stack.enter_context(start_tron_node(workdir / "tron"))
    return Nodes(btc, eth, tron)


def _environment(options: Options, nodes: Nodes, db_url: str, workdir: Path) -> dict[str, str]:
    """What every process gets: this machine's database and nodes, short polls and leases,
    and review limits that a run's withdrawals stay under (new destinations are reviewed)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KASSA_")}
    env |= {
        "KASSA_DEVNET": "false",
        "KASSA_DATABASE_URL": db_url,
        "KASSA_DATA_DIR": str(workdir / "data"),
        "KASSA_CHAINS__BTC__RPC_URL": nodes.btc.url,
        "KASSA_CHAINS__BTC__RPC_API_KEY": nodes.btc.api_key,
        "KASSA_CHAINS__ETH__RPC_URL": nodes.eth.url,
        "KASSA_CHAINS__ETH__USDT_CONTRACT": nodes.eth.usdt_address,
        "KASSA_CHAINS__TRON__API_URL": nodes.tron.url,
        "KASSA_CHAINS__TRON__USDT_CONTRACT": nodes.tron.usdt_contract,
        "KASSA_PAYOUTS__WORKER__LEASE_SECONDS": str(options.lease),
        "KASSA_PAYOUTS__WORKER__POLL_INTERVAL_SECONDS": str(POLL_SECONDS),
        "KASSA_PAYOUTS__WORKER__RETRY_SECONDS": "2",
        "KASSA_PAYOUTS__REVIEW__MAX_COUNT_PER_DAY": "10000",
        "KASSA_PAYOUTS__REVIEW__MAX_USD_PER_DAY": "1000000.00",
        "KASSA_PRICING__HISTORY_TOLERANCE_SECONDS": "3600",
    }
    for chain in ("BTC", "ETH", "TRON"):
        env[f"KASSA_CHAINS__{chain}__POLL_INTERVAL_SECONDS"] = str(POLL_SECONDS)
        env[f"KASSA_CHAINS__{chain}__LEASE_SECONDS"] = str(options.lease)
    return env


def _signer_env(workdir: Path) -> dict[str, str]:
    secrets = workdir / "secrets"
    return {
        "KASSA_SIGNER__KEY_DIR": str(secrets / "signer"),
        "KASSA_SIGNER__PASSWORD_FILE": str(secrets / "signer-password"),
    }


def _prepare(env: dict[str, str], database: Database, nodes: Nodes, workdir: Path) -> str:
    """`kassa migrate` (a process, as deployed), then what an operator does once: an admin
    key, a first rate refresh, and the hot wallets' key files funded by the faucet."""
    subprocess.run([str(KASSA), "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
    with database.transaction() as conn:
        created = apikeys.ensure_bootstrap_admin(conn, DatabaseClock().now(conn))
    if created is None:
        raise RuntimeError("a fresh database already has an admin key")
    chains = nodes.chains()
    services = Services(Settings(devnet=False, chains=chains), database, DatabaseClock())
    try:
        missing = services.pricing.refresh().missing
    finally:
        services.close()
    if missing:
        raise RuntimeError(f"no rates for {missing}")
    signer_env = _signer_env(workdir)
    key_dir = Path(signer_env["KASSA_SIGNER__KEY_DIR"])
    password = Path(signer_env["KASSA_SIGNER__PASSWORD_FILE"])
    key_dir.mkdir(parents=True)
    password.write_text("scale-out\n")
    for chain in Chain:
        create_key_file(key_dir / f"{chain.value}.json", "scale-out", iterations=2)
    signer = load_local_signer(
        SignerSettings(key_dir=key_dir, password_file=password), list(Chain), data_dir=workdir
    )
    faucets = {Chain.BTC: nodes.btc.faucet(), Chain.ETH: nodes.eth.faucet()}
    faucets[Chain.TRON] = nodes.tron.faucet()
    for chain, funding in HOT_FUNDING.items():
        rail = build_rail(chains, PayoutSettings(), signer, chain)
        try:
            hot = rail.hot_address()
        finally:
            close_client(rail)
        for code, amount, times in funding:
            for _ in range(times):
                faucets[chain].fund(hot, Money.parse(amount, asset(code)))
    nodes.btc.rpc().generate(2, nodes.btc.faucet_key.address)
    return created[1]


def _fleet(env: dict[str, str], workdir: Path) -> Fleet:
    logs = workdir / "logs"
    logs.mkdir()
    instances: list[Instance] = []
    ports = [free_port(), free_port()]
    for n in (1, 2):

        def add(role: str, argv: list[str], extra: dict[str, str] | None = None) -> None:
            log = logs / f"{role}-{n}.log"  # noqa: B023 - used at once
            instances.append(Instance(role, n, argv, {**env, **(extra or {})}, log))  # noqa: B023

        add("api", ["serve", "--host", "127.0.0.1", "--port", str(ports[n - 1])])
        add("worker", ["worker"])
        add("payout-worker", ["payout-worker", "--name", f"payout-{n}"], _signer_env(workdir))
        for chain in Chain:
            add(f"watch-{chain.value}", ["watch", "--chain", chain.value])
    return Fleet(instances)


def _api_ports(fleet: Fleet) -> list[int]:
    return [int(i.argv[i.argv.index("--port") + 1]) for i in fleet.of("api")]


def _stop(fleet: Fleet) -> None:
    with interrupts_deferred():
        fleet.stop()


# --------------------------------------------------------------------------- load and kills


class LeaseWatch:
    """Which watcher holds each chain's lease, read every `LEASE_WATCH_SECONDS`."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.owners: dict[str, str | None] = {}

    def read(self) -> dict[str, str | None]:
        with self.database.transaction() as conn:
            rows = conn.execute(
                select(watcher_checkpoint.c.chain, watcher_checkpoint.c.lease_owner)
            ).all()
        self.owners = {str(row.chain): row.lease_owner for row in rows}
        return self.owners


@dataclass
class Pending:
    """A watcher kill whose takeover has not been seen yet."""

    kill: Kill
    chain: str
    killed_at: float


def _load_and_kill(
    options: Options,
    result: Result,
    progress: Progress,
    fleet: Fleet,
    nodes: Nodes,
    database: Database,
    token: str,
) -> Sent:
    fleet.start()
    rng = random.Random(result.seed)  # noqa: S311 - a reproducible kill order, not a secret
    progress.step(
        f"fleet of {len(fleet.instances)} processes; {options.minutes:g} min of load, a kill "
        f"every {options.kill_every:g} s (seed {result.seed}), leases {options.lease} s",
        options.minutes * 60,
    )
    api = Api(_api_ports(fleet), token, result.api)
    load = Load(
        api,
        {Chain.BTC: nodes.btc.faucet(), Chain.ETH: nodes.eth.faucet()}
        | {Chain.TRON: nodes.tron.faucet()},
        options.accounts,
        options.deposit_every,
        random.Random(result.seed + 1),  # noqa: S311 - reproducible load
    )
    start_heights = {chain: chain_tip(nodes.chains(), chain) for chain in Chain}
    stop_load = threading.Event()
    stop_mining = threading.Event()
    miner = threading.Thread(target=_mine, args=(nodes.btc, stop_mining), daemon=True)
    miner.start()
    leases = LeaseWatch(database)
    try:
        _wait_ready(fleet, database)
        progress.heartbeat("every API answers /readyz and every chain's watcher ticked")
        load.open_accounts()
        loader = threading.Thread(target=load.run, args=(stop_load,), daemon=True)
        started = time.monotonic()
        loader.start()
        deck: list[str] = []
        pending: list[Pending] = []
        next_kill = started + options.kill_every
        next_report = started + PROGRESS_SECONDS
        while time.monotonic() - started < options.minutes * 60:
            now = time.monotonic()
            owners = leases.read()
            _note_takeovers(pending, owners, fleet, result, now)
            for revived in fleet.revive():
                progress.heartbeat(f"{revived.name} ended by itself; restarted")
            if now >= next_kill:
                if not deck:
                    deck = list(ROLES)
                    rng.shuffle(deck)
                kill = _kill(deck.pop(0), fleet, owners, rng, now - started)
                result.kills.append(kill)
                if kill.owner is not None:
                    pending.append(Pending(kill, kill.role.removeprefix("watch-"), now))
                progress.heartbeat(
                    f"SIGKILL {kill.instance}"
                    + (f" (lease holder {kill.owner})" if kill.owner else "")
                    + "; restarted"
                )
                next_kill += options.kill_every
            if now >= next_report:
                progress.heartbeat(_status(load, database, result))
                next_report += PROGRESS_SECONDS
            time.sleep(LEASE_WATCH_SECONDS)
        result.seconds = time.monotonic() - started
        stop_load.set()
        loader.join(60)
        progress.step("load stopped; waiting for the last credits and payouts", 30)
        drained = time.monotonic()
        while time.monotonic() - drained < options.drain_timeout:
            now = time.monotonic()
            _note_takeovers(pending, leases.read(), fleet, result, now)
            fleet.revive()
            load.approve()
            if _settled(load, database):
                break
            if now >= next_report:
                progress.heartbeat(_status(load, database, result))
                next_report = now + PROGRESS_SECONDS
            time.sleep(0.5)
        result.drain_seconds = time.monotonic() - drained
        for left in pending:
            result.takeovers.append(Takeover(left.chain, left.kill.instance, None, ""))
    finally:
        stop_load.set()
        stop_mining.set()
        api.close()
    result.deposits_sent = len(load.deposits)
    result.payouts_requested = len(load.withdrawals)
    result.usage_events = load.usage_events
    result.activations = load.activations
    result.load_errors = load.errors
    result.deposits_credited, result.payouts_confirmed = _counts(load, database)
    return Sent(load.deposits, list(load.withdrawals), start_heights)


@dataclass(frozen=True, slots=True)
class Sent:
    """What the load did, for the checks: the faucet's deposits, the withdrawals requested,
    and each chain's tip before the first payout."""

    deposits: list[SentDeposit]
    withdrawals: list[str]
    start_heights: dict[Chain, int]


def _wait_ready(fleet: Fleet, database: Database) -> None:
    """Until both API processes answer /readyz and a watcher of each chain has ticked."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        for revived in fleet.revive():
            raise RuntimeError(f"{revived.name} ended at start:\n{revived.output()[-3000:]}")
        ready = all(_answers(port) for port in _api_ports(fleet))
        with database.transaction() as conn:
            ticked = conn.execute(
                select(func.count())
                .select_from(watcher_checkpoint)
                .where(watcher_checkpoint.c.last_tick_at.is_not(None))
            ).scalar_one()
        if ready and ticked == len(Chain):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the fleet was not ready within {READY_SECONDS} s")


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _mine(node: BitcoinNode, stop: threading.Event) -> None:
    """A BTC block every `BLOCK_SECONDS` (bcoin regtest mines only when asked)."""
    rpc = node.rpc()
    address = node.faucet_key.address
    while not stop.wait(BLOCK_SECONDS):
        try:
            rpc.generate(1, address)
        except Exception as error:  # the run goes on; a missing block only slows it down
            print(f"mining failed: {error}", file=sys.stderr)


def _kill(
    role: str, fleet: Fleet, owners: dict[str, str | None], rng: random.Random, at: float
) -> Kill:
    """SIGKILL one instance of `role` and start it again at once (compose's restart policy
    would, a little later). For a watcher, the lease holder."""
    instances = fleet.of(role)
    victim = rng.choice(instances)
    owner = None
    if role.startswith("watch-"):
        holder = owners.get(role.removeprefix("watch-"))
        for instance in instances:
            if holder is not None and instance.watcher_owner() == holder:
                victim, owner = instance, holder
    victim.kill()
    victim.start()
    return Kill(at, victim.name, role, owner)


def _note_takeovers(
    pending: list[Pending],
    owners: dict[str, str | None],
    fleet: Fleet,
    result: Result,
    now: float,
) -> None:
    for item in list(pending):
        holder = owners.get(item.chain)
        if holder is None or holder == item.kill.owner:
            continue
        by = next((i.name for i in fleet.of(item.kill.role) if i.watcher_owner() == holder), holder)
        result.takeovers.append(Takeover(item.chain, item.kill.instance, now - item.killed_at, by))
        pending.remove(item)


def _counts(load: Load, database: Database) -> tuple[int, int]:
    with database.transaction() as conn:
        credited = conn.execute(
            select(func.count()).select_from(deposit).where(deposit.c.status == "credited")
        ).scalar_one()
        confirmed = 0
        if load.withdrawals:
            confirmed = conn.execute(
                select(func.count())
                .select_from(payout_request)
                .where(
                    payout_request.c.id.in_(list(load.withdrawals)),
                    payout_request.c.status == "confirmed",
                )
            ).scalar_one()
    return int(credited), int(confirmed)


def _settled(load: Load, database: Database) -> bool:
    credited, confirmed = _counts(load, database)
    return credited >= len(load.deposits) and confirmed == len(load.withdrawals)


def _status(load: Load, database: Database, result: Result) -> str:
    credited, confirmed = _counts(load, database)
    kills = Counter(kill.role for kill in result.kills)
    return (
        f"deposits {credited}/{len(load.deposits)} credited, payouts {confirmed}/"
        f"{len(load.withdrawals)} confirmed, API {result.api.answered} answers "
        f"({result.api.refused} refused), kills {sum(kills.values())}"
    )


# --------------------------------------------------------------------------- checks and report


def _check(
    result: Result,
    options: Options,
    sent: Sent,
    database: Database,
    nodes: Nodes,
    env: dict[str, str],
) -> None:
    result.checks.append(deposits_credited_once(database, sent.deposits))
    result.checks.append(
        payouts_paid_once(database, nodes.chains(), sent.start_heights, sent.withdrawals)
    )
    result.checks.append(doctor(env))
    limit = options.lease + POLL_SECONDS + LEASE_WATCH_SECONDS
    gaps = [t.gap_seconds for t in result.takeovers]
    late = [t for t in result.takeovers if t.gap_seconds is None or t.gap_seconds > limit]
    result.checks.append(
        Check(
            f"watcher takeovers within the lease ({limit:g} s with a poll)",
            not late,
            f"{len(gaps)} takeover(s)"
            + (f", {len(late)} late or missing" if late else "")
            + (f", max {max(g for g in gaps if g is not None):.1f} s" if any(gaps) else ""),
        )
    )
    result.checks.append(
        Check(
            "no process ended by itself",
            not result.crashes,
            ", ".join(f"{name}: {codes}" for name, codes in result.crashes.items()) or "none",
        )
    )
    errors = result.api.answers.get("5xx", 0) + result.api.gave_up
    result.checks.append(
        Check(
            "API: no 5xx, no request given up, load without errors",
            errors == 0 and not result.load_errors,
            f"{result.api.answers.get('5xx', 0)} 5xx, {result.api.gave_up} given up, "
            f"{len(result.load_errors)} load errors"
            + (f" (first: {result.load_errors[0][:200]})" if result.load_errors else ""),
        )
    )


def print_summary(result: Result, out: Callable[[str], object] = print) -> None:
    options = result.options
    seconds = max(result.seconds, 1e-9)
    kills = Counter(kill.role for kill in result.kills)
    out("")
    out(
        f"Scale-out: {options.minutes:g} min of load, a kill every {options.kill_every:g} s "
        f"(seed {result.seed}), leases {options.lease} s; drained in "
        f"{clock_text(result.drain_seconds)}"
    )
    rows = [
        ("deposits sent / credited", f"{result.deposits_sent} / {result.deposits_credited}"),
        (
            "payouts requested / confirmed",
            f"{result.payouts_requested} / {result.payouts_confirmed}",
        ),
        ("usage events / activations", f"{result.usage_events} / {result.activations}"),
        (
            "API answers (req/s)",
            f"{result.api.answered} ({result.api.answered / seconds:.1f}/s): "
            + ", ".join(f"{k} {v}" for k, v in sorted(result.api.answers.items())),
        ),
        ("API attempts on a dead process", f"{result.api.refused} (retried on the other)"),
        ("kills", ", ".join(f"{role} {kills[role]}" for role in ROLES)),
    ]
    gaps = [t.gap_seconds for t in result.takeovers if t.gap_seconds is not None]
    for takeover in result.takeovers:
        gap = "never" if takeover.gap_seconds is None else f"{takeover.gap_seconds:.1f} s"
        rows.append(
            (
                f"takeover {takeover.chain}",
                f"{takeover.killed} killed → {takeover.by or '?'} after {gap} "
                f"(lease {options.lease} s)",
            )
        )
    if gaps:
        rows.append(
            ("takeover gap median / max", f"{statistics.median(gaps):.1f} / {max(gaps):.1f} s")
        )
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        out(f"  {label:<{width}}  {value}")
    out("")
    for check in result.checks:
        out(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    out("")
    out("all checks passed" if result.ok else "FAIL: see the checks above")
