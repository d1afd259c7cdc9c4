"""`kassa bench payouts`: how many payouts per second the payout worker gets onto each local
chain, and how much fee BTC batching saves.

Per run: a fresh database built by the migrations (PostgreSQL by default, where several workers
may run; SQLite runs one worker), a fresh hot key funded by the devnet faucet with real
transactions, one customer, and ``--payouts`` approved $21 withdrawals to fresh addresses
(default policy: $5 flat fee, network fee deducted). Then ``--workers`` production
`PayoutWorker`s in threads, each with its own node connection, pay them while a miner thread
mines a block every ``--mine-every`` seconds. Measured from the moment the workers start:

* **sent/s** — payouts signed and accepted by the node, until the last one was sent;
* **confirmed/s** — payouts confirmed and booked in the ledger, until the last one was (this
  one is bounded by the block rhythm and the confirmations the chain settings ask for).

Then the chain is read block by block (the deposit scanner, not Kassa's tables): every
destination must have received exactly one transfer of exactly the net amount recorded, and
each payout must have exactly one confirmed transaction. A failed check prints FAIL and makes
the exit code 1. Runs: BTC one payout per transaction, BTC in batches of ``--batch``, ETH
(ether and USDT-ERC20 alternating, one nonce sequence), TRON (USDT-TRC20). The two BTC runs pay
the same amounts at the same fee rate, so the fee per payout shows what batching saves.

It is a benchmark, not a test: no speed is asserted. Each chain's node is started fresh on a
free port in a temporary directory and stopped afterwards; bench databases are dropped.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import coincurve
from sqlalchemy import select

from kassa.accounts import service as accounts
from kassa.assets import price_symbol
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.network import Chain
from kassa.clock import DatabaseClock
from kassa.config import Settings
from kassa.db import Database, make_engine
from kassa.db.migrate import upgrade
from kassa.deposits.addresses import match_key
from kassa.deposits.settings import ChainsSettings
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.transfers import adjust
from kassa.money import USD, Money, asset
from kassa.payouts.model import RequestStatus
from kassa.payouts.requests import Payouts
from kassa.payouts.runtime import build_rail
from kassa.payouts.settings import PayoutSettings
from kassa.payouts.signer import LocalKeySigner
from kassa.payouts.tables import payout_request, payout_tx, payout_tx_line
from kassa.pricing.settings import PricingSettings
from kassa.wiring import Services
from kassa_dev.bench._args import at_least, chains
from kassa_dev.bench._chart import panels_svg
from kassa_dev.bench._databases import (
    DEFAULT_PG_ADMIN_URL,
    POSTGRES,
    SQLITE,
    Target,
    postgres_target,
    sqlite_target,
)
from kassa_dev.bench._payouts_run import (
    LocalNode,
    WorkerPool,
    chain_tip,
    chains_settings_for,
    close_client,
    fresh_address,
    paid_on_chain,
)
from kassa_dev.bench._progress import Progress
from kassa_dev.bench._report import machine
from kassa_dev.bench._signals import interrupts_deferred, sigterm_as_interrupt
from kassa_dev.bench._watch_report import write_json
from kassa_dev.devnet import tron_node
from kassa_dev.devnet.testing import (
    BitcoinNode,
    GanacheNode,
    start_bitcoin_node,
    start_ganache_node,
    start_tron_node,
)

WITHDRAWAL_USD = "21.00"
"""Above the policy's $20 minimum; $16 of it is paid out, less the network fee."""

# Rough costs on the project's 2-vCPU machine, for the run ETA only.
NODE_START_SECONDS = 6.0
RUN_SETUP_SECONDS = 6.0
REQUEST_SECONDS = 0.02
PAY_SECONDS = {Chain.BTC: 0.05, Chain.ETH: 0.2, Chain.TRON: 0.1}


@dataclass(frozen=True, slots=True)
class RunSpec:
    chain: Chain
    coins: tuple[str, ...]
    batch: int | None
    """BTC: payouts per transaction at most (None: one each)."""

    @property
    def label(self) -> str:
        coins = " + ".join(self.coins)
        if self.chain is Chain.BTC:
            return f"{coins}, batches of ≤{self.batch}" if self.batch else f"{coins}, one per tx"
        return coins


@dataclass(slots=True)
class RunResult:
    label: str
    chain: str
    database: str
    workers: int
    payouts: int
    transactions: int = 0
    sent_seconds: float | None = None
    confirmed_seconds: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    fee_asset: str = ""
    fee_paid_native: int = 0
    fee_paid_usd: str = "0"
    signed_by_worker: dict[str, int] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c["ok"] for c in self.checks)

    @property
    def sent_per_second(self) -> float | None:
        return None if not self.sent_seconds else self.payouts / self.sent_seconds

    @property
    def confirmed_per_second(self) -> float | None:
        return None if not self.confirmed_seconds else self.payouts / self.confirmed_seconds

    @property
    def fee_per_payout(self) -> Decimal | None:
        """Fee paid per payout, in the fee asset's whole units."""
        if not self.payouts or not self.fee_asset:
            return None
        decimals = asset(self.fee_asset).decimals
        return Decimal(self.fee_paid_native) / self.payouts / (Decimal(10) ** decimals)


@dataclass(frozen=True, slots=True)
class Options:
    chains: tuple[Chain, ...]
    payouts: int
    workers: int
    batch: int
    database: str
    pg_url: str
    mine_every: float
    timeout: float
    out: Path | None

    def specs(self) -> list[RunSpec]:
        specs: list[RunSpec] = []
        for chain in self.chains:
            if chain is Chain.BTC:
                specs += [RunSpec(chain, ("BTC",), None), RunSpec(chain, ("BTC",), self.batch)]
            elif chain is Chain.ETH:
                specs.append(RunSpec(chain, ("ETH", "USDT-ERC20"), None))
            else:
                specs.append(RunSpec(chain, ("USDT-TRC20",), None))
        return specs

    def planned_seconds(self) -> float:
        per_run = sum(
            RUN_SETUP_SECONDS + self.payouts * (REQUEST_SECONDS + PAY_SECONDS[spec.chain])
            for spec in self.specs()
        )
        return per_run + NODE_START_SECONDS * len(self.chains)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    progress = Progress(options.planned_seconds())
    results: list[RunResult] = []
    workdir = Path(tempfile.mkdtemp(prefix="kassa-bench-payouts-"))
    try:
        with sigterm_as_interrupt():
            for chain in options.chains:
                specs = [spec for spec in options.specs() if spec.chain is chain]
                results += _bench_chain(chain, specs, options, workdir, progress)
    except KeyboardInterrupt:
        print("\ninterrupted: nodes stopped, bench databases removed", file=sys.stderr)
        return 130
    finally:
        with interrupts_deferred():
            shutil.rmtree(workdir, ignore_errors=True)
    _report(results, options)
    return 0 if results and all(r.ok for r in results) else 1


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="kassa bench payouts",
        description="Measure payouts/s per chain on the local chains, and the fee BTC batching "
        "saves.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--chains", type=chains, default="btc,eth,tron", help="comma-separated")
    parser.add_argument("--payouts", type=at_least(1), default=200, help="payouts per run")
    parser.add_argument("--workers", type=at_least(1), default=2, help="payout workers (threads)")
    parser.add_argument("--batch", type=at_least(2), default=20, help="BTC batch size")
    parser.add_argument(
        "--db", choices=(POSTGRES, SQLITE), default=POSTGRES, help="database (SQLite: 1 worker)"
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument(
        "--mine-every", type=float, default=0.25, help="seconds between mined blocks"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run at most")
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="write payouts.json and .svg here"
    )
    args = parser.parse_args(argv)
    workers = 1 if args.db == SQLITE else args.workers
    if workers != args.workers:
        print("SQLite: one worker process (several need PostgreSQL's row locks)")
    return Options(
        chains=args.chains,
        payouts=args.payouts,
        workers=workers,
        batch=args.batch,
        database=args.db,
        pg_url=args.pg_url,
        mine_every=args.mine_every,
        timeout=args.timeout,
        out=args.out,
    )


# --------------------------------------------------------------------------- one chain


def _start(chain: Chain, workdir: Path) -> LocalNode:
    if chain is Chain.BTC:
        return start_bitcoin_node(workdir)
    if chain is Chain.ETH:
        return start_ganache_node(workdir)
    return start_tron_node(workdir, block_interval=0)


def _bench_chain(
    chain: Chain, specs: list[RunSpec], options: Options, workdir: Path, progress: Progress
) -> list[RunResult]:
    progress.step(f"{chain.display_name}: start a fresh node", NODE_START_SECONDS)
    results: list[RunResult] = []
    try:
        node = _start(chain, workdir / chain.value)
    except Exception as error:  # reported per run; the other chains still run
        traceback.print_exc(file=sys.stderr)
        return [_result(spec, options, f"node did not start: {error}") for spec in specs]
    try:
        for spec in specs:
            results.append(_bench_run(spec, node, options, progress))
    finally:
        node.stop()
    return results


def _result(spec: RunSpec, options: Options, error: str | None = None) -> RunResult:
    return RunResult(
        spec.label,
        spec.chain.value,
        options.database,
        options.workers,
        options.payouts,
        error=error,
    )


@contextmanager
def _database(options: Options) -> Iterator[Database]:
    with ExitStack() as stack:
        target: Target = stack.enter_context(
            postgres_target(options.pg_url) if options.database == POSTGRES else sqlite_target()
        )
        db = Database(make_engine(target.url, pool_size=options.workers + 4))
        stack.callback(db.dispose)
        upgrade(db.engine)
        yield db


def _miner(node: LocalNode, stack: ExitStack) -> Callable[[], object]:
    if isinstance(node, BitcoinNode):
        rpc = node.rpc()  # one request per call, no connection kept
        address = node.faucet_key.address
        return lambda: rpc.generate(1, address)
    if isinstance(node, GanacheNode):
        eth = stack.enter_context(EthRpc(node.url))
        return lambda: eth.call("evm_mine")
    return lambda: tron_node.mine(node.url, 1)


def _hot_funding(spec: RunSpec, payouts: int) -> list[Money]:
    """What the hot wallet gets from the faucet: several BTC coins (so the workers' payouts
    can be in flight at once), else the coin and the fee asset, with room to spare."""
    if spec.chain is Chain.BTC:
        coins = max(8, payouts // 10)
        each = (
            Money.parse("0.5", asset("BTC")) if payouts <= 400 else Money.parse("1", asset("BTC"))
        )
        return [each] * coins
    if spec.chain is Chain.ETH:
        return [
            Money.parse("20", asset("ETH")),
            Money.parse(str(20 * payouts), asset("USDT-ERC20")),
        ]
    # A USDT-TRC20 payout in flight holds its fee limit (50 TRX by default) until it settles.
    return [
        Money.parse(str(60 * payouts + 1000), asset("TRX")),
        Money.parse(str(20 * payouts), asset("USDT-TRC20")),
    ]


def _bench_run(spec: RunSpec, node: LocalNode, options: Options, progress: Progress) -> RunResult:
    result = _result(spec, options)
    n = options.payouts
    progress.step(
        f"{spec.chain.display_name} {spec.label}: {n} payouts, {options.workers} worker(s), "
        f"{options.database}",
        RUN_SETUP_SECONDS + n * (REQUEST_SECONDS + PAY_SECONDS[spec.chain]),
    )
    try:
        with ExitStack() as stack:
            db = stack.enter_context(_database(options))
            _run(spec, node, db, options, progress, result, stack)
    except Exception as error:  # reported in the table; the other runs still go
        traceback.print_exc(file=sys.stderr)
        result.error = f"{type(error).__name__}: {error}"
        progress.line(f"    FAIL — {result.error}")
    return result


def _run(
    spec: RunSpec,
    node: LocalNode,
    db: Database,
    options: Options,
    progress: Progress,
    result: RunResult,
    stack: ExitStack,
) -> None:
    chain, n = spec.chain, options.payouts
    chains = chains_settings_for(node)
    settings = PayoutSettings.model_validate(
        {
            "review": {
                "new_destinations": False,
                "max_count_per_day": n + 1,
                "max_usd_per_day": str(Decimal(WITHDRAWAL_USD) * (n + 1)),
            },
            "worker": {"batch_size": 20, "retry_seconds": 1},
            "btc": {"batching": spec.batch is not None, "max_batch": spec.batch or 20},
        }
    )
    # Kassa's own parts, built as the product builds them (the default policy, static rates).
    services = Services(
        Settings(
            devnet=False,
            chains=chains,
            payouts=settings,
            pricing=PricingSettings(history_tolerance_seconds=3600),
        ),
        db,
        DatabaseClock(),
    )
    stack.callback(services.close)
    clock, pricing, payouts = services.clock, services.pricing, services.payouts
    missing = pricing.refresh().missing
    if missing:
        raise RuntimeError(f"no rates for {missing}")
    signer = LocalKeySigner({chain: coincurve.PrivateKey()})
    mine = _miner(node, stack)

    hot = _hot_address(chains, settings, signer, chain)
    faucet = node.faucet()
    funding = _hot_funding(spec, n)
    for amount in funding:
        faucet.fund(hot, amount)
    for _ in range(2):
        mine()
    funded = ", ".join(f"{m.format()} {m.asset.code}" for m in funding)
    if spec.chain is Chain.BTC:
        funded = f"{len(funding)} coins of {funding[0].format()} BTC"
    progress.heartbeat(f"hot wallet {hot} funded by the faucet: {funded}")

    ids = _requests(spec, payouts, db, n, progress)
    start_height = chain_tip(chains, chain)

    def report(statuses: dict[str, int], elapsed: float) -> None:
        sent = statuses.get("broadcast", 0) + statuses.get("confirmed", 0)
        progress.heartbeat(
            f"{elapsed:5.1f} s: sent {sent}/{n}, confirmed {statuses.get('confirmed', 0)}/{n}"
        )

    with WorkerPool(
        db,
        clock,
        pricing,
        settings,
        chains,
        signer,
        chain,
        count=options.workers,
        mine=mine,
        mine_every=options.mine_every,
    ) as pool:
        waited = pool.wait(ids, timeout_seconds=options.timeout, every=report)
    if pool.errors:
        raise pool.errors[0]
    result.statuses = waited.statuses
    result.sent_seconds = waited.sent_seconds
    result.confirmed_seconds = waited.settled_seconds
    result.signed_by_worker = dict(pool.signed)
    progress.heartbeat(
        f"=> sent in {_seconds(waited.sent_seconds)}, confirmed in "
        f"{_seconds(waited.settled_seconds)}; verifying on the chain"
    )
    _verify(spec, db, chains, start_height, ids, result)
    verdict = "verified" if result.ok else "FAIL"
    progress.heartbeat(f"=> {chain.value} {spec.label}: {verdict}")


def _hot_address(
    chains: ChainsSettings, settings: PayoutSettings, signer: LocalKeySigner, chain: Chain
) -> str:
    rail = build_rail(chains, settings, signer, chain)
    try:
        return rail.hot_address()
    finally:
        close_client(rail)


def _requests(
    spec: RunSpec, payouts: Payouts, db: Database, n: int, progress: Progress
) -> list[uuid.UUID]:
    with db.transaction() as conn:
        now = DatabaseClock().now(conn)
        account = accounts.create(
            conn, external_id=f"bench-{uuid.uuid4().hex[:10]}", now=now, request=None
        )
        adjust(
            conn,
            account_id=account.ledger_account_id,
            amount=Money.parse(str(Decimal(WITHDRAWAL_USD) * n), USD),
            direction="credit",
            reason="payout benchmark funds",
            actor="bench",
            now=now,
            request=None,
        )
    ids: list[uuid.UUID] = []
    started = time.monotonic()
    for i in range(n):
        coin = asset(spec.coins[i % len(spec.coins)])
        made = payouts.request_withdrawal(
            account,
            Money.parse(WITHDRAWAL_USD, USD),
            coin,
            fresh_address(spec.chain),
            request=Request.of(IdempotencyKey("bench", uuid.uuid4().hex), "payouts.withdraw", {}),
            actor="bench",
        )
        if made.status is not RequestStatus.APPROVED:
            raise RuntimeError(f"request {made.id} is {made.status.value}, not approved")
        ids.append(made.id)
    progress.heartbeat(
        f"{n} withdrawals of ${WITHDRAWAL_USD} requested and approved in "
        f"{time.monotonic() - started:.1f} s"
    )
    return ids


def _verify(
    spec: RunSpec,
    db: Database,
    chains: ChainsSettings,
    start_height: int,
    ids: list[uuid.UUID],
    result: RunResult,
) -> None:
    with db.transaction() as conn:
        done = conn.execute(
            select(
                payout_request.c.id,
                payout_request.c.destination,
                payout_request.c.asset,
                payout_request.c.net_native,
                payout_request.c.status,
            ).where(payout_request.c.id.in_(ids))
        ).all()
        lines = conn.execute(
            select(payout_tx_line.c.request_id, payout_tx.c.status).join(
                payout_tx, payout_tx.c.id == payout_tx_line.c.tx_id
            )
        ).all()
        txs = conn.execute(
            select(payout_tx.c.status, payout_tx.c.fee_paid_native, payout_tx.c.fee_asset)
        ).all()
    chain = spec.chain
    paid = paid_on_chain(chains, chain, start_height, [row.destination for row in done])
    wrong = [
        row.destination
        for row in done
        if paid.get((match_key(chain, row.destination), row.asset)) != [int(row.net_native)]
    ]
    per_request: dict[uuid.UUID, list[str]] = defaultdict(list)
    for line in lines:
        per_request[line.request_id].append(line.status)
    not_once = [i for i in ids if per_request.get(i) != ["confirmed"]]
    confirmed = sum(1 for row in done if row.status == RequestStatus.CONFIRMED.value)
    result.transactions = len(txs)
    result.fee_asset = txs[0].fee_asset if txs else ""
    result.fee_paid_native = sum(int(tx.fee_paid_native or 0) for tx in txs)
    if result.fee_asset:
        rate = _static_rate(result.fee_asset)
        fee = Fraction(result.fee_paid_native, 10 ** asset(result.fee_asset).decimals) * rate
        result.fee_paid_usd = str(
            (Decimal(fee.numerator) / Decimal(fee.denominator)).quantize(Decimal("0.0001"))
        )
    result.checks = [
        _check(f"every payout confirmed ({confirmed}/{len(ids)})", confirmed == len(ids)),
        _check(
            "each destination received exactly one transfer of the recorded net amount "
            f"(read from {chain.display_name}'s blocks)",
            not wrong,
            f"{len(wrong)} wrong, e.g. {wrong[:3]}" if wrong else "",
        ),
        _check(
            "each payout has exactly one confirmed transaction and no other",
            not not_once,
            f"{len(not_once)} not, e.g. {[str(i) for i in not_once[:3]]}" if not_once else "",
        ),
    ]


def _static_rate(code: str) -> Fraction:
    rate = PricingSettings().static_rates[price_symbol(asset(code))]
    return Fraction(rate)


def _check(name: str, ok: bool, detail: str = "") -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


# --------------------------------------------------------------------------- report


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _rate(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _grid(header: tuple[str, ...], body: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    rows = [header, tuple("-" * width for width in widths), *body]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _fee_text(result: RunResult) -> str:
    per = result.fee_per_payout
    if per is None:
        return "—"
    usd = Decimal(result.fee_paid_usd) / result.payouts
    return f"{per:.6g} {result.fee_asset} (${usd:.4f})"


def summary(results: Sequence[RunResult]) -> str:
    body = [
        (
            r.chain.upper(),
            r.label,
            r.database,
            str(r.workers),
            str(r.payouts),
            str(r.transactions),
            _rate(r.sent_per_second),
            _rate(r.confirmed_per_second),
            _fee_text(r),
            "verified" if r.ok else f"FAIL {r.error or ''}".strip(),
        )
        for r in results
    ]
    header = (
        "chain",
        "payouts",
        "db",
        "workers",
        "n",
        "txs",
        "sent/s",
        "confirmed/s",
        "fee paid per payout",
        "check",
    )
    return _grid(header, body)


def batching_saving(results: Sequence[RunResult]) -> str | None:
    """One line: the BTC fee per payout without and with batching, and the saving."""
    single = next((r for r in results if r.chain == "btc" and "one per tx" in r.label), None)
    batched = next((r for r in results if r.chain == "btc" and "batches" in r.label), None)
    if single is None or batched is None or not single.ok or not batched.ok:
        return None
    a, b = single.fee_paid_native / single.payouts, batched.fee_paid_native / batched.payouts
    usd_saved = Decimal(single.fee_paid_usd) - Decimal(batched.fee_paid_usd)
    return (
        f"BTC batching: {a:,.0f} sat → {b:,.0f} sat of fee per payout "
        f"({(1 - b / a) * 100:.0f} % less; {single.transactions} → {batched.transactions} "
        f"transactions; ${usd_saved:.2f} saved over {single.payouts} payouts at the run's fee "
        "rate)"
    )


def chart_svg(results: Sequence[RunResult]) -> str:
    blue, teal, orange = "#4c78a8", "#72b7b2", "#f58518"
    ok = [r for r in results if r.ok]
    sent = [(f"{r.chain} {r.label}", r.sent_per_second or 0.0, blue) for r in ok]
    confirmed = [(f"{r.chain} {r.label}", r.confirmed_per_second or 0.0, teal) for r in ok]
    fees = [
        (f"{r.label}", float(Decimal(r.fee_paid_usd) / r.payouts) * 100, orange)
        for r in ok
        if r.chain == "btc"
    ]
    panels = [("payouts sent/s", sent), ("payouts confirmed/s", confirmed)]
    if fees:
        panels.append(("BTC fee paid per payout (US cents)", fees))
    return panels_svg(panels, _rate)


def _report(results: Sequence[RunResult], options: Options) -> None:
    print()
    print(summary(results))
    saving = batching_saving(results)
    if saving:
        print()
        print(saving)
    for r in results:
        for check in r.checks:
            if not check["ok"]:
                print(f"FAIL {r.chain} {r.label}: {check['name']} — {check['detail']}")
    if options.out is not None:
        payload = {
            "benchmark": "payouts",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "options": {
                key: (str(value) if isinstance(value, Path) else value)
                for key, value in asdict(options).items()
            },
            "runs": [
                {
                    **asdict(r),
                    "ok": r.ok,
                    "sent_per_second": r.sent_per_second,
                    "confirmed_per_second": r.confirmed_per_second,
                }
                for r in results
            ],
            "batching": saving,
        }
        write_json(options.out / "payouts.json", payload)
        (options.out / "payouts.svg").write_text(chart_svg(results), encoding="utf-8")
        print(f"\nfigures written to {options.out / 'payouts.json'} and payouts.svg")


if __name__ == "__main__":
    sys.exit(main())
