"""`kassa bench reports`: the finance reports on a synthetic year of history.

For each database (a SQLite file in a temporary directory, and a fresh PostgreSQL database that
is created and dropped) it builds a year of history with ``--postings`` ledger postings
(1,000,000 by default): deposits of BTC, ETH and USDT-TRC20 credited at daily rates (4
postings each), usage batches (2), and refunds and withdrawals paid out (a hold captured, then
the payout's journal entry: 8). The rows are written in bulk — journal transactions, postings,
holds, deposits, usage batches, payout requests and their history, rate samples and locks —
with the accounts' running sums set to what the postings add up to, and the books checked
balanced afterwards.

Then it runs each report of the year's last month (and the trial balance at the end and in
the middle of the year, the HTML report, a customer statement) **in its own process**, so that
each figure is that report's own: wall time and the process's peak resident memory
(``ru_maxrss``), next to the memory of the same process before the report ran. A
reconciliation run (`kassa.reports.reconciliation.Reconciler`: the ledger and records legs and
solvency; the synthetic history has no chain behind it) is timed the same way, over the
history as built (it reconciles: no break) and with every deposit's record one micro-dollar off
(``reconciliation-breaks``: a break per deposit, stored in chunks).

Run it as ``python -m kassa_dev.bench.reports`` (or ``kassa bench reports``); ``--help`` lists
the options. Progress goes to stdout as it builds and runs.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from kassa.accounts import service as customers
from kassa.db import Database
from kassa.deposits.tables import deposit, deposit_address
from kassa.ledger import house
from kassa.ledger.tables import ledger_account, ledger_hold, ledger_posting, ledger_transaction
from kassa.money import BTC, ETH, TRX, USD, USDT_TRC20, Asset
from kassa.payouts.tables import payout_event, payout_request
from kassa.pricing.tables import rate_lock, rate_sample
from kassa.spending.tables import usage_batch
from kassa_dev.bench._databases import (
    DEFAULT_PG_ADMIN_URL,
    POSTGRES,
    SQLITE,
    Target,
    postgres_target,
    sqlite_target,
)
from kassa_dev.bench._progress import Heartbeat, Progress
from kassa_dev.bench._signals import sigterm_as_interrupt

FIRST_DAY = date(2025, 12, 1)
DAYS = 365
MONTH = "2026-11"
ZONE = "UTC"
BATCH_DAYS = 5
COINS: tuple[tuple[Asset, str, str, Decimal], ...] = (
    (BTC, "btc", "BTC", Decimal(60_000)),
    (ETH, "eth", "ETH", Decimal(3_000)),
    (USDT_TRC20, "tron", "USDT", Decimal(1)),
)
FEE_ASSET = {"BTC": BTC, "ETH": ETH, "USDT-TRC20": TRX}
REPORTS = (
    "activity",
    "fees",
    "fx",
    "sla",
    "statement",
    "trial-balance-end",
    "trial-balance-mid",
    "html",
    "reconciliation",
    "reconciliation-breaks",
)
LISTED = 100
"""Open breaks a bench run lists in its outcome (the table keeps them all)."""


@dataclass(frozen=True, slots=True)
class Options:
    databases: tuple[str, ...]
    postings: int
    customers: int
    pg_url: str
    json_path: Path | None
    seed: int
    only: tuple[str, ...] = REPORTS


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--run-one"]:
        return _run_one(args[1:])
    options = parse_args(args)
    with sigterm_as_interrupt():
        progress = Progress(planned_seconds=_planned(options))
        results = []
        for name in options.databases:
            with _target(name, options) as target:
                results.append(_bench(target, options, progress))
    _print_table(results, options)
    if options.json_path is not None:
        document = {"options": {"postings": options.postings, "customers": options.customers}}
        options.json_path.write_text(json.dumps({**document, "runs": results}, indent=2) + "\n")
        progress.line(f"figures written to {options.json_path}")
    return 0 if all(r["ok"] for r in results) else 1


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="kassa bench reports", description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postings", type=int, default=1_000_000, help="ledger postings to build")
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--pg-url", default=DEFAULT_PG_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--only", default=",".join(REPORTS), help="comma-separated reports to run (default: all)"
    )
    parsed = parser.parse_args(argv)
    if parsed.postings < 1_000 or parsed.customers < 2:
        parser.error("--postings must be at least 1000 and --customers at least 2")
    databases = (SQLITE, POSTGRES) if parsed.db == "both" else (parsed.db,)
    only = tuple(name for name in parsed.only.split(",") if name)
    unknown = sorted(set(only) - set(REPORTS))
    if unknown or not only:
        parser.error(f"--only takes some of {', '.join(REPORTS)}")
    return Options(
        databases,
        parsed.postings,
        parsed.customers,
        parsed.pg_url,
        parsed.json,
        parsed.seed,
        only,
    )


def _planned(options: Options) -> float:
    per_db = options.postings / 25_000 + len(options.only) * 3
    return per_db * len(options.databases)


def _target(name: str, options: Options) -> AbstractContextManager[Target]:
    return sqlite_target() if name == SQLITE else postgres_target(options.pg_url)


# --------------------------------------------------------------------------- building


@dataclass
class _Books:
    """What the build has written so far, and the accounts' running sums."""

    customers: list[tuple[uuid.UUID, int, str]] = field(default_factory=list)
    addresses: dict[tuple[uuid.UUID, str], int] = field(default_factory=dict)
    sums: dict[int, list[int]] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    postings: int = 0
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    last_deposit: uuid.UUID | None = None
    """The deposit a refund refunds (any credited one will do for the figures)."""

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)

    def entry(
        self,
        kind: str,
        at: datetime,
        memo: str,
        legs: list[tuple[int, str, int]],
        meta: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        """A journal entry; `meta` links it to its record as the services do (what
        reconciliation's records leg follows)."""
        tx = uuid.uuid4()
        self.add(
            "ledger_transaction",
            {
                "id": tx,
                "kind": kind,
                "memo": memo,
                "created_at": at,
                "metadata_json": None if meta is None else json.dumps(meta, sort_keys=True),
            },
        )
        for account, code, amount in legs:
            self.add(
                "ledger_posting",
                {"transaction_id": tx, "account_id": account, "asset": code, "amount": amount},
            )
            pair = self.sums.setdefault(account, [0, 0])
            pair[0 if amount > 0 else 1] += abs(amount)
        self.postings += len(legs)
        return tx


_ORDER = (
    "ledger_transaction",
    "ledger_posting",
    "ledger_hold",
    "deposit",
    "usage_batch",
    "payout_request",
    "payout_event",
)
_TABLES = {
    "ledger_transaction": ledger_transaction,
    "ledger_posting": ledger_posting,
    "ledger_hold": ledger_hold,
    "deposit": deposit,
    "usage_batch": usage_batch,
    "payout_request": payout_request,
    "payout_event": payout_event,
}


def _flush(db: Database, books: _Books) -> None:
    with db.transaction() as conn:
        for name in _ORDER:
            rows = books.rows.pop(name, [])
            if rows:
                conn.execute(insert(_TABLES[name]), rows)


def build(db: Database, options: Options, progress: Progress) -> _Books:
    from kassa.db.migrate import upgrade

    upgrade(db.engine)
    rng = random.Random(options.seed)  # noqa: S311 - synthetic figures, not secrets
    books = _Books()
    start = datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=UTC)
    with db.transaction() as conn:
        for n in range(options.customers):
            account = customers.create(conn, external_id=f"bench-{n}", now=start, request=None)
            books.customers.append((account.id, account.ledger_account_id, f"bench-{n}"))
            for _coin, chain, _symbol, _rate in COINS:
                books.addresses[(account.id, chain)] = _address(conn, account.id, chain, n, start)
        books.accounts = _house_accounts(conn, start)
        locks = _rates(conn, start)
    per_day = options.postings / DAYS
    heartbeat = Heartbeat()
    for day in range(DAYS):
        target = round(per_day * (day + 1))
        while books.postings < target:
            _event(books, rng, locks, start + timedelta(days=day), day)
        if day % BATCH_DAYS == BATCH_DAYS - 1 or day == DAYS - 1:
            _flush(db, books)
        if heartbeat.due():
            progress.heartbeat(f"day {day + 1}/{DAYS}: {books.postings:,} postings written")
    with db.transaction() as conn:
        for account_id, (debits, credits) in books.sums.items():
            conn.execute(
                update(ledger_account)
                .where(ledger_account.c.id == account_id)
                .values(debits_posted=debits, credits_posted=credits)
            )
    return books


def _address(conn: Connection, account: uuid.UUID, chain: str, n: int, at: datetime) -> int:
    key = conn.execute(
        insert(deposit_address).values(
            customer_account_id=account,
            chain=chain,
            address=f"bench-{chain}-{n}",
            match_key=f"bench-{chain}-{n}",
            key_id="bench",
            derivation_index=n,
            created_at=at,
        )
    ).inserted_primary_key
    return _first(key)


def _first(key: Any) -> int:
    if key is None:
        raise RuntimeError("the database returned no key")
    return int(key[0])


def _house_accounts(conn: Connection, at: datetime) -> dict[str, int]:
    found = {
        "revenue": house.revenue(conn, USD, at).id,
        "network-fees": house.network_fees(conn, USD, at).id,
        "clearing": house.payout_clearing(conn, at).id,
    }
    for coin, chain, _symbol, _rate in COINS:
        code = coin.code.value
        found[f"wallet:{code}"] = house.wallet(conn, f"{chain}-deposits", coin, at).id
        found[f"hot:{code}"] = house.hot_wallet(conn, chain, coin, at).id
        found[f"fx:{code}:{code}"] = house.fx(conn, coin, coin, at).id
        found[f"fx:{code}:USD"] = house.fx(conn, coin, USD, at).id
    found["hot:TRX"] = house.hot_wallet(conn, "tron", TRX, at).id
    found["fx:TRX:TRX"] = house.fx(conn, TRX, TRX, at).id
    found["fx:TRX:USD"] = house.fx(conn, TRX, USD, at).id
    return found


def _rates(
    conn: Connection, start: datetime
) -> dict[tuple[int, str], tuple[uuid.UUID, uuid.UUID, Decimal, Decimal]]:
    """Per day and asset: (bid lock, ask lock, bid, ask) — BTC and ETH drift, USDT at par."""
    out: dict[tuple[int, str], tuple[uuid.UUID, uuid.UUID, Decimal, Decimal]] = {}
    rows_s: list[dict[str, Any]] = []
    for day in range(DAYS):
        at = start + timedelta(days=day)
        for coin, _chain, symbol, base in (*COINS, (TRX, "tron", "TRX", Decimal("0.25"))):
            drift = Decimal(1) + Decimal((day * 37) % 200 - 100) / Decimal(1000)
            market = (base * drift).quantize(Decimal("0.01")) if symbol != "USDT" else Decimal(1)
            rows_s.append(
                {
                    "symbol": symbol,
                    "kind": "live",
                    "sampled_at": at,
                    "market_bid": market,
                    "market_ask": market,
                    "bid": (market * Decimal("0.995")).quantize(Decimal("0.000001")),
                    "ask": (market * Decimal("1.005")).quantize(Decimal("0.000001")),
                    "spread_bps": 50,
                    "pegged": symbol == "USDT",
                    "depegged": False,
                    "accepted_count": 3,
                    "recorded_at": at,
                    "_code": coin.code.value,
                    "_day": day,
                }
            )
    for row in rows_s:
        code, day = row.pop("_code"), row.pop("_day")
        sample = _first(conn.execute(insert(rate_sample).values(**row)).inserted_primary_key)
        ids = []
        for side in ("bid", "ask"):
            lock = uuid.uuid4()
            conn.execute(
                insert(rate_lock).values(
                    id=lock,
                    purpose=f"bench:{code}:{day}:{side}",
                    asset=code,
                    symbol=row["symbol"],
                    side=side,
                    rate=row[side],
                    priced_at=row["sampled_at"],
                    sample_id=sample,
                    sources="[]",
                    locked_at=row["sampled_at"],
                )
            )
            ids.append(lock)
        out[(day, code)] = (ids[0], ids[1], row["bid"], row["ask"])
    return out


DEPOSIT_SHARE = 0.25
USAGE_SHARE = 0.93
"""Rolls below 0.25 deposit, below 0.93 use, the rest pay out."""
MAX_USAGE_USD = 49 * 50_000
MAX_PAYOUT_USD = 300 * 10**6


def _balance(books: _Books, ledger_id: int) -> int:
    """A customer's balance so far, micro-USD (credits less debits)."""
    debits, credits = books.sums.get(ledger_id, (0, 0))
    return credits - debits


def _event(
    books: _Books,
    rng: random.Random,
    locks: dict[tuple[int, str], tuple[uuid.UUID, uuid.UUID, Decimal, Decimal]],
    day_start: datetime,
    day: int,
) -> None:
    at = day_start + timedelta(seconds=rng.randrange(86_400), microseconds=rng.randrange(10**6))
    customer, ledger_id, _external = books.customers[rng.randrange(len(books.customers))]
    roll = rng.random()
    if roll >= DEPOSIT_SHARE and _balance(books, ledger_id) < (
        MAX_USAGE_USD if roll < USAGE_SHARE else MAX_PAYOUT_USD
    ):
        roll = 0.0  # what the balance cannot cover becomes a deposit: no balance below zero
    coin, chain, _symbol, _base = COINS[rng.randrange(len(COINS))]
    code = coin.code.value
    bid_lock, ask_lock, bid, ask = locks[(day, code)]
    a = books.accounts
    if roll < DEPOSIT_SHARE:  # a deposit: 4 postings
        usd = rng.randrange(5, 500) * 10**6
        coins = int(Decimal(usd) / bid * 10 ** (coin.decimals - 6))
        usd = int(Decimal(coins) * bid / 10 ** (coin.decimals - 6))
        books.last_deposit = uuid.uuid4()
        tx = books.entry(
            "deposit",
            at,
            f"deposit of {code}",
            [
                (a[f"wallet:{code}"], code, coins),
                (a[f"fx:{code}:{code}"], code, -coins),
                (a[f"fx:{code}:USD"], "USD", usd),
                (ledger_id, "USD", -usd),
            ],
            {"deposit_id": str(books.last_deposit)},
        )
        books.add(
            "deposit",
            {
                "id": books.last_deposit,
                "chain": chain,
                "asset": code,
                "txid": uuid.uuid4().hex,
                "position": 0,
                "deposit_address_id": books.addresses[(customer, chain)],
                "customer_account_id": customer,
                "amount": coins,
                "sender": "bench",
                "sender_kind": "known",
                "first_seen_at": at,
                "confirmations": 6,
                "status": "credited",
                "rate_lock_id": bid_lock,
                "usd_amount": usd,
                "credit_count": 1,
                "credit_transaction_id": tx,
                "created_at": at,
                "updated_at": at,
            },
        )
    elif roll < USAGE_SHARE:  # a usage batch: 2 postings
        events = rng.randrange(1, 50)
        usd = events * rng.randrange(1_000, 50_000)
        tx = books.entry(
            "usage",
            at,
            f"usage: {events} events",
            [(ledger_id, "USD", usd), (a["revenue"], "USD", -usd)],
        )
        books.add(
            "usage_batch",
            {
                "id": uuid.uuid4(),
                "customer_account_id": customer,
                "transaction_id": tx,
                "charged_events": events,
                "duplicate_events": 0,
                "charged_amount": usd,
                "created_at": at,
            },
        )
    else:  # a payout: hold captured (2 postings), then its journal entry (6)
        _payout(books, rng, customer, ledger_id, coin, chain, ask_lock, ask, at)


def _payout(
    books: _Books,
    rng: random.Random,
    customer: uuid.UUID,
    ledger_id: int,
    coin: Asset,
    chain: str,
    lock: uuid.UUID,
    ask: Decimal,
    created: datetime,
) -> None:
    a = books.accounts
    code = coin.code.value
    refund = rng.random() >= 0.7 and books.last_deposit is not None
    kind = "refund" if refund else "withdrawal"
    gross = rng.randrange(20, 300) * 10**6
    fees = 5 * 10**6 if kind == "withdrawal" else 0
    scale = 10 ** (coin.decimals - 6)
    fee_asset = FEE_ASSET[code]
    fee_native = {"BTC": 1_500, "ETH": 40_000 * 10**9, "USDT-TRC20": 4 * 10**6}[code]
    fee_rate = ask if fee_asset is coin else Decimal("0.25")
    fee_usd = -(-fee_native * fee_rate * 10**6 // 10**fee_asset.decimals)
    charged = int(fee_usd) + 10_000
    net_native = int(Decimal(gross - fees - charged) / ask * scale)
    net_usd = int(Decimal(net_native) * ask / scale)
    charged = gross - fees - net_usd
    approved = created + timedelta(hours=rng.randrange(0, 72))
    settled = approved + timedelta(minutes=rng.randrange(5, 120))
    hold = uuid.uuid4()
    capture = books.entry(
        "capture",
        settled,
        f"{kind} paid",
        [(ledger_id, "USD", gross), (a["clearing"], "USD", -gross)],
    )
    books.add(
        "ledger_hold",
        {
            "id": hold,
            "debit_account_id": ledger_id,
            "credit_account_id": a["clearing"],
            "asset": "USD",
            "amount": gross,
            "status": "captured",
            "created_at": created,
            "resolved_at": settled,
            "captured_amount": gross,
            "capture_transaction_id": capture,
        },
    )
    fee_code = fee_asset.code.value
    legs: dict[tuple[int, str], int] = {}
    for account, asset_code, amount in (
        (a["clearing"], "USD", gross),
        (a["revenue"], "USD", -fees),
        (a["network-fees"], "USD", -charged + int(fee_usd)),
        (a[f"fx:{code}:USD"], "USD", -net_usd),
        (a[f"fx:{code}:{code}"], code, net_native),
        (a[f"hot:{code}"], code, -net_native),
        (a[f"hot:{fee_code}"], fee_code, -fee_native),
        (a[f"fx:{fee_code}:{fee_code}"], fee_code, fee_native),
        (a[f"fx:{fee_code}:USD"], "USD", -int(fee_usd)),
    ):
        legs[(account, asset_code)] = legs.get((account, asset_code), 0) + amount
    request = uuid.uuid4()
    books.entry(
        "payout",
        settled,
        f"{kind} of {code}",
        [(acc, asset_code, amt) for (acc, asset_code), amt in legs.items() if amt != 0],
        {"payout_request_id": str(request), "network_fee_charged_usd": charged},
    )
    books.add(
        "payout_request",
        {
            "id": request,
            "kind": kind,
            "customer_account_id": customer,
            "deposit_id": books.last_deposit if refund else None,
            "asset": code,
            "destination": "bench",
            "status": "confirmed",
            "policy": "default",
            "gross_usd": gross,
            "fees_usd": fees,
            "network_fee_usd": charged,
            "net_usd": net_usd,
            "network_fee_native": fee_native,
            "network_fee_asset": fee_code,
            "net_native": net_native,
            "rate_lock_id": lock,
            "hold_id": hold,
            "decision": json.dumps(
                {"breakdown": {"flat_fee_usd": {"amount": f"{fees / 10**6:.2f}", "asset": "USD"}}}
            ),
            "needs_review": True,
            "review_due_at": created + timedelta(days=2),
            "requested_by": "customer",
            "actor": "bench",
            "created_at": created,
            "updated_at": settled,
            "execution_rate_lock_id": lock,
            "network_fee_paid_native": fee_native,
            "settled_at": settled,
        },
    )
    for from_status, to_status, at in (
        (None, "pending_review", created),
        ("pending_review", "approved", approved),
        ("approved", "confirmed", settled),
    ):
        books.add(
            "payout_event",
            {
                "request_id": request,
                "from_status": from_status,
                "to_status": to_status,
                "actor": "bench",
                "at": at,
            },
        )


# --------------------------------------------------------------------------- running


def _bench(target: Target, options: Options, progress: Progress) -> dict[str, Any]:
    db = Database.from_url(target.url, pool_size=2)
    try:
        progress.step(
            f"{target.name}: building {options.postings:,} postings over {DAYS} days",
            options.postings / 25_000,
        )
        started = time.perf_counter()
        books = build(db, options, progress)
        build_seconds = time.perf_counter() - started
        balanced = _balanced(db)
        progress.line(
            f"{target.name}: built {books.postings:,} postings in {build_seconds:.1f} s; "
            f"books balanced: {balanced}"
        )
        if target.name == POSTGRES:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
    finally:
        db.dispose()
    runs = {}
    for name in options.only:
        progress.step(f"{target.name}: {name}", 3)
        runs[name] = _spawn(target.url, name, books.customers[0][2])
        figure = runs[name]
        if "skipped" in figure:
            progress.heartbeat(f"{name}: {figure['skipped']}")
        elif "error" in figure:
            progress.heartbeat(f"{name}: failed: {figure['error']}")
        else:
            progress.heartbeat(
                f"{name}: {figure['seconds']:.2f} s, {figure['rows']} rows, peak "
                f"{figure['peak_mb']:.0f} MB (before {figure['base_mb']:.0f} MB)"
            )
    ok = balanced and all("error" not in r for r in runs.values())
    return {
        "database": target.name,
        "postings": books.postings,
        "build_seconds": round(build_seconds, 1),
        "balanced": balanced,
        "reports": runs,
        "ok": ok,
    }


def _balanced(db: Database) -> bool:
    with db.transaction() as conn:
        from kassa.reports._sql import exact_sum, prepare

        prepare(conn)
        rows = conn.execute(
            select(
                ledger_posting.c.asset, exact_sum(conn, ledger_posting.c.amount).label("s")
            ).group_by(ledger_posting.c.asset)
        ).all()
        counted = conn.execute(select(func.count()).select_from(ledger_posting)).scalar_one()
    return counted > 0 and all(int(r.s) == 0 for r in rows)


def _spawn(url: str, name: str, customer: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "kassa_dev.bench.reports", "--run-one", name, url, customer]
    done = subprocess.run(  # noqa: S603 - this interpreter and module, fixed arguments
        command, capture_output=True, text=True, check=False, timeout=3_600
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    figure: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figure


def _run_one(args: Sequence[str]) -> int:
    """In a child process: run one report, print its time and the process's peak memory."""
    name, url, customer = args
    from kassa.reports import activity, fees, fx, html, sla, statement, trial_balance
    from kassa.reports.csvout import write_csv
    from kassa.reports.period import parse_period

    db = Database.from_url(url, pool_size=1)
    period = parse_period(MONTH, ZONE)
    now = period.end
    sink = _Sink()
    jobs: dict[str, Callable[[Connection], int]] = {
        "activity": lambda c: write_csv(activity.activity(c, period), sink),
        "fees": lambda c: write_csv(fees.fees(c, period), sink),
        "fx": lambda c: write_csv(fx.fx(c, period, now=now), sink),
        "sla": lambda c: write_csv(sla.sla(c, period, now=now), sink),
        "statement": lambda c: write_csv(statement.statement(c, customer, period), sink),
        "trial-balance-end": lambda c: write_csv(trial_balance.trial_balance(c, period.end), sink),
        "trial-balance-mid": lambda c: write_csv(
            trial_balance.trial_balance(c, datetime(2026, 6, 1, tzinfo=UTC)), sink
        ),
        "html": lambda c: len(html.render_report(c, period, now=now)),
    }
    with db.transaction() as conn:
        conn.execute(select(1)).all()  # connected and warmed before the baseline
    base = _peak_mb()
    started = time.perf_counter()
    try:
        if name == "reconciliation":  # its own transactions, like `kassa reconcile`
            rows = _reconcile(db)
        elif name == "reconciliation-breaks":
            rows = _reconcile_broken(db)
        else:
            with db.transaction() as conn:
                rows = jobs[name](conn)
    finally:
        db.dispose()
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {"seconds": round(seconds, 3), "rows": rows, "peak_mb": _peak_mb(), "base_mb": base}
        )
    )
    return 0


def _reconcile(db: Database) -> int:
    """A reconciliation run over the synthetic books: the ledger and records legs and solvency
    (the history has no chain behind it, so no chain is read); the breaks it finds."""
    from kassa.clock import DatabaseClock
    from kassa.reports.reconciliation.run import Reconciler

    outcome = Reconciler(db, DatabaseClock(), {}, listed=LISTED).run(trigger="bench")
    return outcome.new + outcome.persisting


def _reconcile_broken(db: Database) -> int:
    """The same run over books where every deposit's record disagrees with its credit (each
    deposit's ``usd_amount`` one micro-dollar off, put back afterwards): a break per deposit,
    the case that shows the breaks are stored in chunks, not held together."""
    with db.transaction() as conn:
        conn.execute(update(deposit).values(usd_amount=deposit.c.usd_amount + 1))
    try:
        return _reconcile(db)
    finally:
        with db.transaction() as conn:
            conn.execute(update(deposit).values(usd_amount=deposit.c.usd_amount - 1))


class _Sink:
    """A text sink that counts what it is given and keeps nothing."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, text: str) -> int:
        self.chars += len(text)
        return len(text)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _print_table(results: list[dict[str, Any]], options: Options) -> None:
    print()
    print(
        f"Reports over {options.postings:,} postings ({options.customers:,} customers, "
        f"{DAYS} days); month {MONTH} {ZONE}"
    )
    header = f"{'report':<20}" + "".join(f"{r['database']:>30}" for r in results)
    print(header)
    for name in options.only:
        cells = []
        for result in results:
            figure = result["reports"][name]
            if "skipped" in figure:
                cells.append("not in this build")
            elif "error" in figure:
                cells.append("FAIL")
            else:
                cells.append(f"{figure['seconds']:.2f} s, {figure['peak_mb']:.0f} MB peak")
        print(f"{name:<20}" + "".join(f"{cell:>30}" for cell in cells))
    for result in results:
        built, balanced = result["build_seconds"], result["balanced"]
        print(f"{result['database']}: built in {built} s; balanced: {balanced}")
        for name, figure in result["reports"].items():
            if "error" in figure:
                print(f"FAIL {result['database']} {name}: {figure['error']}")


if __name__ == "__main__":
    raise SystemExit(main())
