"""The `kassa` command for operators.

`kassa up` is the all-in-one default: start the local chains (devnet mode), migrate, make sure an
admin key exists, then serve the API and run the worker (hold expiry, rate refresh) and one
watcher per enabled chain in one process. `serve`, `worker` and `watch --chain X` are the same
parts for deployments that run them separately; they never migrate and refuse to start on a
database that is not at the code's migration head (run `kassa migrate` first).

Settings come from `load_settings`: KASSA_* environment variables over the `--config` TOML file
over defaults. Tokens are printed once, to stdout alone, so `TOKEN=$(kassa keys create …)` works;
everything else goes to stderr.
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import SecretStr, ValidationError
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from kassa.accounts import service as accounts
from kassa.apikeys import service as apikeys
from kassa.apikeys.service import ApiKey
from kassa.chains.network import Chain
from kassa.clock import Clock, DatabaseClock
from kassa.config import Settings, load_settings
from kassa.db import Database
from kassa.db.migrate import current_revision, head_revision, upgrade
from kassa.db.scenario import ScenarioClock
from kassa.deposits.watcher import DeepReorg, Watcher
from kassa.devnet import tron_node
from kassa.devnet.cli import devnet_app
from kassa.devnet.processes import ProcessError
from kassa.devnet.stack import Devnet, DevnetError
from kassa.devnet.tools import ChainToolsError
from kassa.errors import KassaError
from kassa.pricing.errors import NoRate
from kassa.pricing.history import RateSample
from kassa.pricing.model import Symbol, UnknownSymbol, price_text, symbol_of
from kassa.pricing.service import PricingService
from kassa.worker import run_worker

if TYPE_CHECKING:
    from kassa.payouts.worker import PayoutWorker

BOOTSTRAP_KEY_FILE = "bootstrap-admin.key"

app = typer.Typer(
    name="kassa",
    help="Kassa: self-hosted crypto payment gateway.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Issue, list and revoke API keys.", no_args_is_help=True)
rates_app = typer.Typer(help="USD rates: current, at a time, refresh.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(bench_app, name="bench")
app.add_typer(rates_app, name="rates")
app.add_typer(devnet_app, name="devnet")


# --------------------------------------------------------------------------- plumbing


def say(message: str = "") -> None:
    typer.echo(message, err=True)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML settings file (KASSA_* variables override it)"),
    ] = None,
) -> None:
    ctx.obj = config


def settings_of(ctx: typer.Context, **overrides: Any) -> Settings:
    config: Path | None = ctx.find_root().obj
    try:
        return load_settings(config, **overrides)
    except FileNotFoundError as error:
        fail(str(error), 2)
    except ValidationError as error:
        fail(f"invalid settings: {error}", 2)


@contextmanager
def database_of(settings: Settings, *, pool_size: int | None = None) -> Iterator[Database]:
    database = Database.from_url(settings.db_url, pool_size=pool_size or settings.db_pool_size)
    try:
        yield database
    except KassaError as error:
        fail(error.detail)
    finally:
        database.dispose()


def shown_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def require_head(database: Database) -> str:
    """The current revision, or exit: serving an old schema would corrupt money."""
    current, head = current_revision(database.engine), head_revision()
    if current != head:
        fail(
            f"the database {shown_url(str(database.engine.url))} is at migration "
            f"{current or '(none)'} but this Kassa needs {head}; run `kassa migrate` first"
        )
    return current or ""


def setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Alembic logs its context at INFO on every revision check (each /v1/health), and httpx
    # every request the watchers and the rate refresher make.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def local_url(host: str, port: int) -> str:
    """A URL a local curl can reach even when the server listens on every interface."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - mapping the wildcard to loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def stop_on_signals(stop: threading.Event) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


# --------------------------------------------------------------------------- commands


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Upgrade the database to the latest migration."""
    settings = settings_of(ctx)
    with database_of(settings, pool_size=1) as database:
        upgrade(database.engine)
        revision = current_revision(database.engine)
    say(f"database {shown_url(settings.db_url)} is at migration {revision}")
    typer.echo(revision)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (default: settings)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: settings)")] = None,
) -> None:
    """Serve the HTTP API (does not migrate)."""
    settings = settings_of(ctx, host=host, port=port)
    with database_of(settings) as database:
        require_head(database)
        setup_logging()
        _serve(settings, database)


@app.command()
def worker(ctx: typer.Context) -> None:
    """Run the hold-expiry worker loop only (does not migrate)."""
    settings = settings_of(ctx)
    with database_of(settings, pool_size=2) as database:
        require_head(database)
        setup_logging()
        stop = threading.Event()
        stop_on_signals(stop)
        run_worker(settings, stop, database=database, clock=clock_of(settings))


@app.command("payout-worker")
def payout_worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="Run one round, print it, and stop")] = False,
    name: Annotated[str | None, typer.Option(help="Worker id (leases name it)")] = None,
) -> None:
    """Run the payout worker only: sign, broadcast and settle approved payouts."""
    settings = settings_of(ctx)
    if settings.devnet:
        devnet = Devnet(settings.data_dir, echo=say)
        settings = with_devnet_hot_wallets(with_devnet(settings, devnet), devnet)
    with database_of(settings, pool_size=3) as database:
        require_head(database)
        setup_logging()
        worker, skipped = payout_worker_of(settings, database, worker_id=name)
        for chain, reason in skipped.items():
            say(f"not paying out on {chain}: {reason}")
        if once:
            report = worker.run_once()
            say(
                f"signed {len(report.signed)}, broadcast {len(report.broadcast)}, "
                f"confirmed {len(report.confirmed)}, failed {len(report.failed)}, "
                f"waiting {len(report.waiting)}, re-signed {len(report.resigned)}, "
                f"replaced {len(report.replaced)}"
            )
            for request_id, reason in report.waiting.items():
                say(f"  {request_id} waits: {reason}")
            return
        stop = threading.Event()
        stop_on_signals(stop)
        worker.run_forever(stop)


# --------------------------------------------------------------------------- chains


def with_devnet(settings: Settings, devnet: Devnet) -> Settings:
    """Fill the node URLs, the bcoin API key and the token contracts of development networks
    from the running devnet; anything configured explicitly wins."""
    endpoints = devnet.endpoints()
    chains = settings.chains
    btc, eth, tron = chains.btc, chains.eth, chains.tron
    if btc.is_dev() and endpoints.btc_url and endpoints.btc_api_key:
        btc = btc.model_copy(
            update={
                "rpc_url": btc.rpc_url or endpoints.btc_url,
                "rpc_api_key": btc.rpc_api_key or SecretStr(endpoints.btc_api_key),
            }
        )
    if eth.is_dev() and endpoints.eth_url:
        eth = eth.model_copy(
            update={
                "rpc_url": eth.rpc_url or endpoints.eth_url,
                "usdt_contract": eth.usdt_contract or endpoints.usdt_erc20,
            }
        )
    if tron.is_dev() and endpoints.tron_url:
        contract = tron.usdt_contract or tron_node.debug_info(endpoints.tron_url).usdt_contract
        tron = tron.model_copy(
            update={"api_url": tron.api_url or endpoints.tron_url, "usdt_contract": contract}
        )
    chains = chains.model_copy(update={"btc": btc, "eth": eth, "tron": tron})
    return settings.model_copy(update={"chains": chains})


def watcher_of(settings: Settings, chain: Chain, database: Database) -> Watcher:
    """The chain's watcher on Kassa's clock and pricing (raises ChainNotConfigured)."""
    from kassa.deposits.runtime import build_watcher

    clock = clock_of(settings)
    pricing = PricingService(database, clock, settings.pricing)
    return build_watcher(settings.chains, chain, database, clock, pricing)


def start_watchers(
    settings: Settings, database: Database, stop: threading.Event
) -> list[threading.Thread]:
    """One thread per enabled chain whose node is known; the others are said and skipped."""
    from kassa.deposits.runtime import ChainNotConfigured

    threads = []
    for chain in settings.chains.enabled():
        try:
            watcher = watcher_of(settings, chain, database)
        except ChainNotConfigured as error:
            say(f"not watching {chain}: {error}")
            continue
        thread = threading.Thread(
            target=watcher.run_forever,
            args=(stop, settings.chains.of(chain).poll_interval_seconds),
            name=f"kassa-watch-{chain}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    return threads


@app.command()
def watch(
    ctx: typer.Context,
    chain: Annotated[Chain, typer.Option("--chain", help="The chain to watch")],
) -> None:
    """Watch one chain for deposits (resumes from its checkpoint; does not migrate)."""
    from kassa.deposits.runtime import ChainNotConfigured

    settings = settings_of(ctx)
    if settings.devnet:
        settings = with_devnet(settings, Devnet(settings.data_dir, echo=say))
    if not settings.chains.of(chain).enabled:
        fail(f"deposits on {chain.display_name} are disabled ([chains.{chain}] enabled = false)")
    with database_of(settings, pool_size=3) as database:
        require_head(database)
        setup_logging()
        try:
            watcher = watcher_of(settings, chain, database)
        except ChainNotConfigured as error:
            fail(f"{error} (or run the devnet: kassa devnet up)")
        stop = threading.Event()
        stop_on_signals(stop)
        try:
            watcher.run_forever(stop, settings.chains.of(chain).poll_interval_seconds)
        except DeepReorg as error:
            fail(error.detail)


@app.command()
def up(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (default: settings)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: settings)")] = None,
    devnet: Annotated[
        bool | None,
        typer.Option("--devnet/--no-devnet", help="Start and watch the local chains"),
    ] = None,
) -> None:
    """All in one: local chains, migrate, admin key, API, worker and chain watchers."""
    settings = settings_of(ctx, host=host, port=port, devnet=devnet)
    if settings.devnet:
        say("Starting the local chains (kassa devnet up); the first run installs them with npm.")
        chains = Devnet(settings.data_dir, echo=say)
        try:
            chains.up()
        except (ChainToolsError, ProcessError, DevnetError) as error:
            fail(f"the local chains did not start: {error}")
        settings = with_devnet(settings, chains)
        settings = with_devnet_hot_wallets(settings, chains)
    with database_of(settings) as database:
        upgrade(database.engine)
        revision = require_head(database)
        token = bootstrap_admin(settings, database)
        url = local_url(settings.host, settings.port)
        key_file = settings.data_dir / BOOTSTRAP_KEY_FILE
        say(f"Kassa on {shown_url(settings.db_url)} (migration {revision})")
        if token is not None:
            say("\nA bootstrap admin key was created. It is shown only this once:\n")
            typer.echo(token)
            say(f"\nIt is also saved in {key_file} (mode 0600). Store it, then delete the file.")
        credential = f"$(cat {shlex.quote(str(key_file))})" if key_file.exists() else "$KASSA_KEY"
        say(f"\nAPI: {url}/v1   docs: {url}/docs")
        say(f'Try: curl -H "Authorization: Bearer {credential}" {url}/v1/health\n')
        setup_logging()
        stop = threading.Event()
        # uvicorn re-raises the signal that stopped it once it has shut down; with this handler
        # in place that ends the worker gracefully instead of killing the process mid-sweep.
        stop_on_signals(stop)
        sweeper = threading.Thread(
            target=run_worker,
            args=(settings, stop),
            kwargs={"database": database, "clock": clock_of(settings)},
            name="kassa-worker",
            daemon=True,
        )
        sweeper.start()
        watchers = start_watchers(settings, database, stop)
        payer = start_payout_worker(settings, database, stop)
        if settings.devnet:
            say("Send a test deposit: kassa devnet fund ADDRESS AMOUNT ASSET (after creating an")
            say("account and POST /v1/accounts/{id}/deposit-addresses); `kassa devnet down` stops")
            say("the chains.\n")
        try:
            _serve(settings, database)
        finally:
            stop.set()
            for thread in [sweeper, *watchers, *payer]:
                thread.join(timeout=10)


def with_devnet_hot_wallets(settings: Settings, devnet: Devnet) -> Settings:
    """Create and fund the devnet's payout hot wallets (first run) and unlock them."""
    from kassa.devnet.hot_wallets import ensure_hot_wallets

    signer = ensure_hot_wallets(
        settings.data_dir, settings.signer, settings.chains, devnet.faucet(), echo=say
    )
    return settings.model_copy(update={"signer": signer})


def payout_worker_of(
    settings: Settings, database: Database, *, worker_id: str | None = None
) -> tuple[PayoutWorker, dict[Chain, str]]:
    """The payout worker with every rail that can be built; the others and why not."""
    from kassa.payouts.runtime import build_rails, build_worker
    from kassa.payouts.signer import load_local_signer

    signer = load_local_signer(
        settings.signer, settings.chains.enabled(), data_dir=settings.data_dir
    )
    rails, skipped = build_rails(settings.chains, settings.payouts, signer)
    clock = clock_of(settings)
    pricing = PricingService(database, clock, settings.pricing)
    worker = build_worker(database, clock, pricing, settings.payouts, rails, worker_id=worker_id)
    return worker, skipped


def start_payout_worker(
    settings: Settings, database: Database, stop: threading.Event
) -> list[threading.Thread]:
    """The payout worker in a thread; says which chains pay out and which do not, and why."""
    worker, skipped = payout_worker_of(settings, database)
    for chain, reason in skipped.items():
        say(f"not paying out on {chain}: {reason}")
    for chain, rail in worker.rails.items():
        say(f"paying out on {chain} from {rail.hot_address()}")
    thread = threading.Thread(
        target=worker.run_forever, args=(stop,), name="kassa-payouts", daemon=True
    )
    thread.start()
    return [thread]


def clock_of(settings: Settings) -> Clock:
    """The devnet runs on the scenario clock (an operator may move it); else the database's."""
    return ScenarioClock() if settings.devnet else DatabaseClock()


def _serve(settings: Settings, database: Database) -> None:
    import uvicorn  # only the serving commands need it

    from kassa.api import create_app

    app = create_app(settings, database=database, clock=clock_of(settings))
    uvicorn.run(app, host=settings.host, port=settings.port)


def bootstrap_admin(settings: Settings, database: Database) -> str | None:
    """Create the first admin key on a brand-new installation and return its token.

    The key file is written before the key is committed: if writing fails, no key exists that
    nobody could ever read.
    """
    with database.transaction() as conn:
        created = apikeys.ensure_bootstrap_admin(conn, DatabaseClock().now(conn))
        if created is None:
            return None
        _key, token = created
        write_secret(settings.data_dir / BOOTSTRAP_KEY_FILE, token)
    return token


def write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # O_CREAT's mode does not apply to an existing file
        handle.write(text + "\n")


# --------------------------------------------------------------------------- keys


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Who or what uses the key")],
    scope: Annotated[
        list[str], typer.Option(help="accounts:read, accounts:write or admin (repeatable)")
    ],
    account: Annotated[
        str | None, typer.Option(help="Bind the key to this customer account (external id)")
    ] = None,
) -> None:
    """Create a key and print its token (once)."""
    with database_of(settings_of(ctx), pool_size=1) as database:
        require_head(database)
        with database.transaction() as conn:
            account_id = None if account is None else accounts.get_by_external_id(conn, account).id
            key, token = apikeys.create_key(
                conn,
                name=name,
                scopes=scope,
                customer_account_id=account_id,
                now=DatabaseClock().now(conn),
            )
    bound = f", bound to account {account}" if account else ""
    say(f"created key {key.prefix} ({key.name}; {' '.join(sorted(key.scopes))}{bound})")
    say("the token below is shown only this once:")
    typer.echo(token)


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """List keys (never their secrets)."""
    with database_of(settings_of(ctx), pool_size=1) as database:
        require_head(database)
        with database.transaction() as conn:
            rows = [(key, _account_label(conn, key)) for key in apikeys.list_keys(conn)]
    typer.echo(f"{'PREFIX':<14}{'STATUS':<10}{'SCOPES':<30}{'ACCOUNT':<24}NAME")
    for key, label in rows:
        status = "revoked" if key.revoked_at else "active"
        scopes = " ".join(sorted(key.scopes))
        typer.echo(f"{key.prefix:<14}{status:<10}{scopes:<30}{label:<24}{key.name}")


def _account_label(conn: Connection, key: ApiKey) -> str:
    if key.customer_account_id is None:
        return "-"
    return accounts.get(conn, key.customer_account_id).external_id


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, prefix: Annotated[str, typer.Argument(help="The key's prefix")]
) -> None:
    """Revoke a key; requests with it are refused from now on."""
    with database_of(settings_of(ctx), pool_size=1) as database:
        require_head(database)
        with database.transaction() as conn:
            key = apikeys.revoke_key(conn, prefix, DatabaseClock().now(conn))
    say(f"key {key.prefix} ({key.name}) revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S}Z")


# --------------------------------------------------------------------------- rates


def _pricing(settings: Settings, database: Database) -> PricingService:
    return PricingService(database, DatabaseClock(), settings.pricing)


def _print_rate(sample: RateSample) -> None:
    flags = " pegged at 1.00" if sample.pegged else " DE-PEGGED" if sample.depegged else ""
    typer.echo(
        f"{sample.symbol.value:<5} bid {price_text(sample.bid):>18}"
        f"  ask {price_text(sample.ask):>18}"
        f"  at {sample.sampled_at:%Y-%m-%d %H:%M:%S}Z  ({sample.kind} sample #{sample.id},"
        f" market {price_text(sample.market_bid)}/{price_text(sample.market_ask)},"
        f" spread {sample.spread_bps} bps{flags})"
    )
    for quote in sample.quotes:
        prices = (
            f"bid {price_text(quote.bid):>18}  ask {price_text(quote.ask):>18}"
            if quote.bid is not None and quote.ask is not None
            else f"{'-':>22}  {'-':>22}"
        )
        seen = f"{quote.observed_at:%H:%M:%S}Z" if quote.observed_at else "-"
        verdict = "accepted" if quote.accepted else f"rejected: {quote.rejection}"
        detail = f" ({quote.detail})" if quote.detail and not quote.accepted else ""
        typer.echo(f"      {quote.source:<10} {prices}  {seen:>9}  {verdict}{detail}")


@rates_app.command("show")
def rates_show(
    ctx: typer.Context,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Fetch from the sources first")
    ] = False,
) -> None:
    """Current aggregated rates with every quote behind them."""
    settings = settings_of(ctx)
    with database_of(settings, pool_size=2) as database:
        require_head(database)
        pricing = _pricing(settings, database)
        if refresh:
            pricing.refresh()
        missing = 0
        with database.transaction() as conn:
            now = DatabaseClock().now(conn)
            for symbol in Symbol:
                try:
                    _print_rate(pricing.current(conn, symbol, now))
                except NoRate as error:
                    missing += 1
                    typer.echo(f"{symbol.value:<5} no rate: {error.detail}")
    if missing:
        say("(the worker refreshes rates; `kassa rates show --refresh` fetches them now)")
        raise typer.Exit(3)


@rates_app.command("refresh")
def rates_refresh(ctx: typer.Context) -> None:
    """Fetch from the configured sources now and store the aggregated rates."""
    settings = settings_of(ctx)
    with database_of(settings, pool_size=2) as database:
        require_head(database)
        result = _pricing(settings, database).refresh()
    for sample in result.samples.values():
        _print_rate(sample)
    for symbol, reason in result.missing.items():
        typer.echo(f"{symbol.value:<5} no rate: {reason}")
    if result.missing:
        raise typer.Exit(3)


@rates_app.command("at")
def rates_at(
    ctx: typer.Context,
    asset: Annotated[str, typer.Argument(help="BTC, ETH, TRX, USDT, USDT-ERC20 or USDT-TRC20")],
    time: Annotated[
        str, typer.Argument(help="ISO 8601 time with offset, e.g. 2026-11-20T14:03:11Z")
    ],
) -> None:
    """The rate in force at TIME, with the quotes behind it."""
    settings = settings_of(ctx)
    try:
        symbol = symbol_of(asset)
    except UnknownSymbol as error:
        fail(str(error), 2)
    try:
        # Imported here: the API package is heavy and only this command needs its parser.
        from kassa.api.routes.rates import parse_time

        moment = parse_time(time)
    except KassaError as error:
        fail(error.detail, 2)
    with database_of(settings, pool_size=2) as database:
        require_head(database)
        try:
            sample = _pricing(settings, database).rate_at(symbol, moment)
        except NoRate as error:
            fail(error.detail, 3)
    _print_rate(sample)


# =========================================================================== payouts: review
# `kassa payouts …`: an operator's side of refunds and withdrawals — the review queue, one
# request in full, lists, approve and reject (kassa.payouts.review). The actor recorded is
# `operator:cli:<OS user>`. Kept in this one block, its imports included; more
# `kassa payouts` commands join the same sub-app.

import getpass  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime  # noqa: E402

from kassa.payouts import requests as payout_requests  # noqa: E402
from kassa.payouts import review as payout_review  # noqa: E402
from kassa.payouts.model import PayoutRequest, RequestStatus  # noqa: E402

payouts_app = typer.Typer(
    help="Refunds and withdrawals: the review queue, approve, reject, list, show.",
    no_args_is_help=True,
)
app.add_typer(payouts_app, name="payouts")


def operator_actor() -> str:
    """Who approves or rejects from this shell: ``operator:cli:<OS user>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        user = f"uid-{os.getuid()}"
    return f"operator:cli:{user}"


@contextmanager
def _payout_database(ctx: typer.Context) -> Iterator[tuple[Settings, Database]]:
    settings = settings_of(ctx)
    with database_of(settings, pool_size=1) as database:
        require_head(database)
        yield settings, database


def _request_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        fail(f"{text!r} is not a request id (a UUID, as `kassa payouts list` shows)", 2)


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _payout_rows(
    conn: Connection, items: list[PayoutRequest], now: datetime, *, reasons: bool
) -> None:
    """A table of requests; with ``reasons``, each followed by its destination, why it waits
    and who approved it so far."""
    given = payout_review.approvals(conn, [item.id for item in items])
    owners: dict[uuid.UUID, str] = {}
    typer.echo(
        f"{'ID':<37}{'KIND':<11}{'STATUS':<15}{'ACCOUNT':<16}{'GROSS USD':>12}  "
        f"{'PAYS':<26}{'AGE':>8}  APPROVALS"
    )
    for item in items:
        if item.customer_account_id not in owners:
            owner = accounts.get(conn, item.customer_account_id).external_id
            owners[item.customer_account_id] = owner
        done = given.get(item.id, [])
        pays = f"{item.net_native.format()} {item.asset}"
        typer.echo(
            f"{item.id!s:<37}{item.kind.value:<11}{item.status.value:<15}"
            f"{owners[item.customer_account_id]:<16}{item.gross_usd.format():>12}  "
            f"{pays:<26}{_age((now - item.created_at).total_seconds()):>8}  "
            f"{len(done)}/{item.approvals_required}"
        )
        if reasons:
            typer.echo(f"    to {item.destination}")
            for reason in item.review_reasons:
                typer.echo(f"    - {reason.code.value}: {reason.detail}")
            for approval in done:
                note = f" ({approval.note})" if approval.note else ""
                typer.echo(
                    f"    + approved by {approval.actor} at {approval.at:%Y-%m-%d %H:%M:%S}Z{note}"
                )


@payouts_app.command("review")
def payouts_review(ctx: typer.Context) -> None:
    """Requests waiting for an operator, oldest first, with why each waits."""
    with _payout_database(ctx) as (settings, database), database.transaction() as conn:
        items = payout_review.pending(conn)
        if not items:
            say("no refund or withdrawal waits for review")
            return
        _payout_rows(conn, items, clock_of(settings).now(conn), reasons=True)
    say(
        f"\n{len(items)} waiting. Approve: kassa payouts approve ID [--note TEXT]; "
        "reject: kassa payouts reject ID --reason TEXT"
    )


@payouts_app.command("list")
def payouts_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="pending_review, approved, signed, broadcast, confirmed, …")
    ] = None,
    account: Annotated[str | None, typer.Option(help="Only this customer (external id)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many")] = 50,
) -> None:
    """Refunds and withdrawals, newest first."""
    wanted = None
    if status is not None:
        try:
            wanted = RequestStatus(status)
        except ValueError:
            known = ", ".join(s.value for s in RequestStatus)
            fail(f"unknown status {status!r}; one of {known}", 2)
    with _payout_database(ctx) as (settings, database), database.transaction() as conn:
        owner = None if account is None else accounts.get_by_external_id(conn, account).id
        items = payout_review.search(conn, status=wanted, customer_account_id=owner, limit=limit)
        if not items:
            say("no refund or withdrawal matches")
            return
        _payout_rows(conn, items, clock_of(settings).now(conn), reasons=False)


@payouts_app.command("show")
def payouts_show(
    ctx: typer.Context, request_id: Annotated[str, typer.Argument(help="The request's id")]
) -> None:
    """One request in full: money, why it waits, approvals, history, transactions."""
    ident = _request_id(request_id)
    with _payout_database(ctx) as (settings, database), database.transaction() as conn:
        item = payout_requests.get(conn, ident)
        owner = accounts.get(conn, item.customer_account_id).external_id
        now = clock_of(settings).now(conn)
        done = payout_review.approvals(conn, [item.id]).get(item.id, [])
        history = payout_requests.events(conn, item.id)
        txs = payout_review.transactions(conn, item.id)
    fee_native = "" if item.network_fee_native is None else f" ({item.network_fee_native})"
    lines = [
        f"{item.kind.value} {item.id}",
        f"  status       {item.status.value}",
        f"  account      {owner}",
        f"  destination  {item.destination} ({item.asset})",
        f"  gross        {item.gross_usd}",
        f"  fees         {item.fees_usd} (flat {item.flat_fee_usd})",
        f"  network fee  {item.network_fee_usd}{fee_native}, borne: {item.fee_charge.value}",
        f"  net          {item.net_usd} = {item.net_native}",
        f"  policy       {item.policy}; requested by {item.requested_by} ({item.actor})",
        f"  created      {item.created_at:%Y-%m-%d %H:%M:%S}Z"
        f" ({_age((now - item.created_at).total_seconds())} ago)",
    ]
    if item.review_due_at is not None:
        lines.append(f"  review due   {item.review_due_at:%Y-%m-%d %H:%M:%S}Z")
    if item.wait_reason:
        lines.append(f"  waiting      {item.wait_reason}")
    if item.failure_reason:
        lines.append(f"  failed       {item.failure_reason}")
    lines.append(f"  review       {len(done)} of {item.approvals_required} approvals")
    lines += [f"    - {r.code.value}: {r.detail}" for r in item.review_reasons]
    for approval in done:
        note = f" ({approval.note})" if approval.note else ""
        lines.append(
            f"    + approved by {approval.actor} at {approval.at:%Y-%m-%d %H:%M:%S}Z{note}"
        )
    lines.append("  history")
    for event in history:
        was = f"{event['from']} → " if event["from"] else ""
        lines.append(
            f"    {event['at']:%Y-%m-%d %H:%M:%S}Z {was}{event['to']} by {event['actor']}"
            + (f": {event['reason']}" if event["reason"] else "")
        )
    if txs:
        lines.append("  transactions")
    for tx in txs:
        paid = "" if tx.fee_paid_native is None else f", fee paid {tx.fee_paid_native}"
        lines.append(
            f"    {tx.chain} {tx.txid} {tx.status}: {tx.amount_native}, fee up to {tx.fee_native}"
            f"{paid}"
        )
    typer.echo("\n".join(lines))


def _payouts_service(settings: Settings, database: Database) -> payout_requests.Payouts:
    clock = clock_of(settings)
    return payout_requests.Payouts(
        database=database,
        clock=clock,
        pricing=PricingService(database, clock, settings.pricing),
        policy=settings.policy.load(),
        settings=settings.payouts,
        chains=settings.chains,
    )


@payouts_app.command("approve")
def payouts_approve(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request's id")],
    note: Annotated[str | None, typer.Option(help="Recorded with the approval")] = None,
) -> None:
    """Approve a request pending review (as operator:cli:<you>); prints its new status."""
    ident = _request_id(request_id)
    actor = operator_actor()
    with _payout_database(ctx) as (settings, database), database.transaction() as conn:
        item = _payouts_service(settings, database).approve(conn, ident, actor=actor, note=note)
    if item.status is RequestStatus.APPROVED:
        say(f"{item.kind.value} {item.id} approved by {actor}: the payout worker sends it")
    else:
        say(
            f"{item.kind.value} {item.id}: approval recorded for {actor}; it needs "
            f"{item.approvals_required} approvals from different operators"
        )
    typer.echo(item.status.value)


@payouts_app.command("reject")
def payouts_reject(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request's id")],
    reason: Annotated[str, typer.Option(help="Why (recorded; the customer may ask)")],
) -> None:
    """Reject a request not yet signed; its reserved funds return to the balance."""
    ident = _request_id(request_id)
    actor = operator_actor()
    with _payout_database(ctx) as (settings, database), database.transaction() as conn:
        item = _payouts_service(settings, database).reject(conn, ident, actor=actor, reason=reason)
    say(
        f"{item.kind.value} {item.id} rejected by {actor}; {item.gross_usd} returned to the balance"
    )
    typer.echo(item.status.value)


# =========================================================================== end payouts: review


# --------------------------------------------------------------------------- bench


@bench_app.command(
    "ledger",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench_ledger(ctx: typer.Context) -> None:
    """Ledger benchmark; arguments go to kassa.bench.ledger (try --help)."""
    try:
        # Imported lazily: the benchmark is optional and heavy.
        module = importlib.import_module("kassa.bench.ledger")
    except ModuleNotFoundError as error:
        if error.name not in ("kassa.bench", "kassa.bench.ledger"):
            raise
        fail("the ledger benchmark (kassa.bench.ledger) is not part of this installation")
    entry: Callable[[list[str] | None], int] = module.main
    raise typer.Exit(entry(list(ctx.args)))


@bench_app.command(
    "watchers",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench_watchers(ctx: typer.Context) -> None:
    """Deposit-watcher benchmark on the local chains; arguments go to kassa.bench.watchers."""
    module = importlib.import_module("kassa.bench.watchers")
    entry: Callable[[list[str] | None], int] = module.main
    raise typer.Exit(entry(list(ctx.args)))


@bench_app.command(
    "payouts",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench_payouts(ctx: typer.Context) -> None:
    """Payout benchmark on the local chains (payouts/s, BTC batching fee saved); arguments go
    to kassa.bench.payouts."""
    module = importlib.import_module("kassa.bench.payouts")
    entry: Callable[[list[str] | None], int] = module.main
    raise typer.Exit(entry(list(ctx.args)))


def main() -> None:
    app()
