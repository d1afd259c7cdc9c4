"""The commands that run Kassa: `migrate`, `serve`, `worker`, `payout-worker`, `watch` and `up`.

`kassa up` is the all-in-one default: start the local chains (devnet mode, from the development
tools; without a devnet setting only on the embedded SQLite database, and it says so), migrate,
make sure an admin key exists (printed only to a terminal, always saved in a 0600 file), then
serve the API and run the worker (hold expiry, rate refresh), one watcher per enabled chain and
the payout worker in one process. Every other command runs on real networks unless
`devnet = true` is set.
`serve`, `worker`, `payout-worker` and `watch --chain X` are the same parts for deployments that
run them separately; they never migrate and refuse to start on a database that is not at the
code's migration head (run `kassa migrate` first).
"""

from __future__ import annotations

import os
import shlex
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kassa.chains.network import Chain
from kassa.cli._common import (
    database_of,
    fail,
    metrics_served,
    require_head,
    say,
    settings_of,
    setup_logging,
    shown_url,
    stop_on_signals,
    write_secret,
)
from kassa.collector import tune_gc

if TYPE_CHECKING:
    from fastapi import FastAPI

    from kassa.clock import Clock
    from kassa.config import Settings
    from kassa.db import Database
    from kassa.wiring import Services

BOOTSTRAP_KEY_FILE = "bootstrap-admin.key"

MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=1,
        max=65535,
        help="Serve this process's metrics at GET /metrics on this port (default: "
        "[metrics] port; unset, none)",
    ),
]


def migrate(ctx: typer.Context) -> None:
    """Upgrade the database to the latest migration."""
    from kassa.db.migrate import current_revision, upgrade

    settings = settings_of(ctx)
    with database_of(settings, pool_size=1) as database:
        upgrade(database.engine)
        revision = current_revision(database.engine)
    say(f"database {shown_url(settings.db_url)} is at migration {revision}")
    typer.echo(revision)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (default: settings)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default: settings)")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes on the one port (each with its own database pool of "
            "db_pool_size connections); one process uses at most one core",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (does not migrate)."""
    settings = settings_of(ctx, host=host, port=port)
    with database_of(settings, pool_size=1 if workers > 1 else None) as database:
        require_head(database)
        setup_logging(settings)
        if workers == 1:
            _serve(_services(settings, database))
            return
    from kassa.api import serving

    # Each worker process reads the settings as this one did: environment and config file.
    config: Path | None = ctx.find_root().obj
    if config is not None:
        os.environ["KASSA_CONFIG_FILE"] = str(config.resolve())
    say(f"serving on {local_url(settings.host, settings.port)} with {workers} processes")
    serving.serve_workers(
        f"{__name__}:{worker_app.__name__}",
        host=settings.host,
        port=settings.port,
        workers=workers,
    )


def worker_app() -> FastAPI:
    """The app of one process of `kassa serve --workers N` (uvicorn calls this in each)."""
    from kassa.api import create_app
    from kassa.config import load_settings

    settings = load_settings()
    setup_logging(settings)
    app = create_app(settings, clock=_clock(settings))
    tune_gc()
    return app


def worker(ctx: typer.Context, metrics_port: MetricsPort = None) -> None:
    """Run the worker loops (holds, rates, webhooks, daily report and reconciliation; does
    not migrate)."""
    from kassa.worker import run_worker

    settings = settings_of(ctx)
    with database_of(settings, pool_size=2) as database:
        require_head(database)
        setup_logging(settings)
        stop = threading.Event()
        stop_on_signals(stop)
        with metrics_served(settings, metrics_port):
            run_worker(settings, stop, database=database, clock=_clock(settings))


def payout_worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option(help="Run one round, print it, and stop")] = False,
    name: Annotated[str | None, typer.Option(help="Worker id (leases name it)")] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Run the payout worker only: sign, broadcast and settle approved payouts."""
    settings = _on_devnet(settings_of(ctx), hot_wallets=True)
    with database_of(settings, pool_size=3) as database:
        require_head(database)
        setup_logging(settings)
        worker, skipped = _services(settings, database).payout_worker(worker_id=name)
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
        with metrics_served(settings, metrics_port):
            worker.run_forever(stop)


def watch(
    ctx: typer.Context,
    chain: Annotated[Chain, typer.Option("--chain", help="The chain to watch")],
    metrics_port: MetricsPort = None,
) -> None:
    """Watch one chain for deposits (resumes from its checkpoint; does not migrate)."""
    from kassa.deposits.runtime import ChainNotConfigured
    from kassa.deposits.watcher import DeepReorg

    settings = _on_devnet(settings_of(ctx))
    if not settings.chains.of(chain).enabled:
        fail(f"deposits on {chain.display_name} are disabled ([chains.{chain}] enabled = false)")
    with database_of(settings, pool_size=3) as database:
        require_head(database)
        setup_logging(settings)
        try:
            watcher = _services(settings, database).watcher(chain)
        except ChainNotConfigured as error:
            fail(f"{error} (or run the devnet: kassa devnet up)")
        stop = threading.Event()
        stop_on_signals(stop)
        tune_gc()  # a block's decoding no longer walks the import-time heap (kassa.collector)
        try:
            with metrics_served(settings, metrics_port):
                watcher.run_forever(stop, settings.chains.of(chain).poll_interval_seconds)
        except DeepReorg as error:
            fail(error.detail)


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
    from kassa.db.migrate import upgrade

    settings = choose_devnet(settings_of(ctx, host=host, port=port, devnet=devnet))
    if settings.devnet:
        say("Starting the local chains (kassa devnet up); the first run installs them with npm.")
    settings = _on_devnet(settings, start=True, hot_wallets=True)
    with database_of(settings) as database:
        upgrade(database.engine)
        revision = require_head(database)
        token = bootstrap_admin(settings, database)
        if settings.devnet:
            _book_devnet_funding(settings, database)
        url = local_url(settings.host, settings.port)
        key_file = settings.data_dir / BOOTSTRAP_KEY_FILE
        say(f"Kassa on {shown_url(settings.db_url)} (migration {revision})")
        if token is not None:
            announce_bootstrap_key(token, key_file, interactive=sys.stdout.isatty())
        credential = f"$(cat {shlex.quote(str(key_file))})" if key_file.exists() else "$KASSA_KEY"
        say(f"\nAPI: {url}/v1   docs: {url}/docs")
        say(f"Console: {url}/console/ (sign in with the bootstrap key, {key_file})")
        say(f'Try: curl -H "Authorization: Bearer {credential}" {url}/v1/health\n')
        setup_logging(settings)
        stop = threading.Event()
        # uvicorn re-raises the signal that stopped it once it has shut down; with this handler
        # in place that ends the worker gracefully instead of killing the process mid-sweep.
        stop_on_signals(stop)
        services = _services(settings, database)
        threads = services.start_background(stop, say)
        if settings.devnet:
            say("Send a test deposit: kassa devnet fund ADDRESS AMOUNT ASSET (after creating an")
            say("account and POST /v1/accounts/{id}/deposit-addresses); `kassa devnet down` stops")
            say("the chains.\n")
        try:
            _serve(services)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)


def _book_devnet_funding(settings: Settings, database: Database) -> None:
    """Book the devnet hot wallets' faucet funding in the ledger (once per funding), so that
    reconciliation finds them holding what the ledger says."""
    from kassa.payouts.signer import key_dir
    from kassa.reports.reconciliation.funding import FUNDING_FILE, book_funding_file

    path = key_dir(settings.signer, settings.data_dir) / FUNDING_FILE
    clock = _clock(settings)
    with database.transaction() as conn:
        book_funding_file(conn, path, actor="devnet", now=clock.now(conn))


def choose_devnet(settings: Settings) -> Settings:
    """`kassa up` without a devnet setting: the devnet on the embedded SQLite database (the
    zero-configuration start), said aloud; real networks on any configured database."""
    if settings.devnet is not None:
        return settings
    chosen = settings.database_url is None
    if chosen:
        say(
            "devnet is not set and the database is the embedded SQLite file: running on the "
            "local development network (local chains, development keys, a movable clock). "
            "Set devnet = false (KASSA_DEVNET=false, --no-devnet) for real networks."
        )
    return settings.model_copy(update={"devnet": chosen})


def announce_bootstrap_key(token: str, key_file: Path, *, interactive: bool) -> None:
    """Show a new bootstrap admin key on a terminal only: output that is not a terminal is
    usually a log file, and a key in a log outlives its rotation. The file always has it."""
    if interactive:
        say("\nA bootstrap admin key was created. It is shown only this once:\n")
        typer.echo(token)
        say(f"\nIt is also saved in {key_file} (mode 0600). Store it, then delete the file.")
        return
    say(
        f"\nA bootstrap admin key was created and saved in {key_file} (mode 0600). It is not "
        "printed because the output is not a terminal. Read it from the file, store it, then "
        "delete the file."
    )


def bootstrap_admin(settings: Settings, database: Database) -> str | None:
    """Create the first admin key on a brand-new installation and return its token.

    The key file is written before the key is committed: if writing fails, no key exists that
    nobody could ever read.
    """
    from kassa.apikeys import service as apikeys
    from kassa.clock import DatabaseClock

    with database.transaction() as conn:
        created = apikeys.ensure_bootstrap_admin(conn, DatabaseClock().now(conn))
        if created is None:
            return None
        _key, token = created
        write_secret(settings.data_dir / BOOTSTRAP_KEY_FILE, token)
    return token


def local_url(host: str, port: int) -> str:
    """A URL a local curl can reach even when the server listens on every interface."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - mapping the wildcard to loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _on_devnet(settings: Settings, *, start: bool = False, hot_wallets: bool = False) -> Settings:
    """`wiring.with_devnet`, ending the command with the reason when the devnet is unavailable."""
    from kassa.plugins import DevnetUnavailable
    from kassa.wiring import with_devnet

    try:
        return with_devnet(settings, say, start=start, hot_wallets=hot_wallets)
    except DevnetUnavailable as error:
        fail(f"the local chains are not available: {error}")


def _clock(settings: Settings) -> Clock:
    from kassa.plugins import DevnetUnavailable
    from kassa.wiring import clock_of

    try:
        return clock_of(settings)
    except DevnetUnavailable as error:
        fail(str(error))


def _services(settings: Settings, database: Database) -> Services:
    from kassa.wiring import Services

    return Services(settings, database, _clock(settings))


def _serve(services: Services) -> None:
    from kassa.api import create_app, serving  # only the serving commands need them

    settings = services.settings
    serving.serve(create_app(settings, services=services), host=settings.host, port=settings.port)
