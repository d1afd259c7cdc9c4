"""kassa-dev's commands for the `kassa` CLI: the plugin side of the ``kassa.cli`` entry points.

kassa-dev's pyproject.toml registers, in the entry-point group ``kassa.cli``,

    devnet = "kassa_dev.cli:devnet_app"     kassa devnet up|status|down|fund
    bench  = "kassa_dev.cli:bench_app"      kassa bench ledger|watchers|mempool|payouts|
                                            webhooks|reports|scaleout|api

The contract (`kassa.plugins`): an entry point's name is the command name, and its object is a
`typer.Typer` (added as a command group) or a plain function (added as a command); the product
CLI, which never imports kassa_dev, loads whatever is installed (`kassa.cli.add_commands`).
Without kassa-dev installed the `kassa` command has no devnet or bench commands.

This module is imported by every `kassa` command, `kassa --help` included, so it imports only
typer and the devnet's command definitions, which import their own machinery when they run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import typer

from kassa_dev.devnet.cli import devnet_app

__all__ = ["bench_app", "devnet_app"]

bench_app = typer.Typer(rich_markup_mode=None, help="Benchmarks.", no_args_is_help=True)

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _run(module_name: str, ctx: typer.Context) -> None:
    # Imported when run: the benchmarks are heavy, and `kassa --help` should not load them.
    module = importlib.import_module(module_name)
    entry: Callable[[list[str] | None], int] = module.main
    raise typer.Exit(entry(list(ctx.args)))


@bench_app.command("ledger", context_settings=_PASS_THROUGH, add_help_option=False)
def bench_ledger(ctx: typer.Context) -> None:
    """Ledger benchmark; arguments go to kassa_dev.bench.ledger (try --help)."""
    _run("kassa_dev.bench.ledger", ctx)


@bench_app.command("watchers", context_settings=_PASS_THROUGH, add_help_option=False)
def bench_watchers(ctx: typer.Context) -> None:
    """Deposit-watcher benchmark on the local chains; arguments go to kassa_dev.bench.watchers."""
    _run("kassa_dev.bench.watchers", ctx)


@bench_app.command("mempool", context_settings=_PASS_THROUGH, add_help_option=False)
def bench_mempool(ctx: typer.Context) -> None:
    """From a payment entering the node's mempool to deposit.seen, on the local bcoin and
    ganache; arguments go to kassa_dev.bench.mempool."""
    _run("kassa_dev.bench.mempool", ctx)


@bench_app.command("payouts", context_settings=_PASS_THROUGH, add_help_option=False)
def bench_payouts(ctx: typer.Context) -> None:
    """Payout benchmark on the local chains (payouts/s, BTC batching fee saved); arguments go
    to kassa_dev.bench.payouts."""
    _run("kassa_dev.bench.payouts", ctx)


@bench_app.command("webhooks", context_settings=_PASS_THROUGH, add_help_option=False)
def bench_webhooks(ctx: typer.Context) -> None:
    """Webhook benchmark (deliveries/s, the outbox's cost on usage postings); arguments go to
    kassa_dev.bench.webhooks."""
    _run("kassa_dev.bench.webhooks", ctx)


@bench_app.command("reports", context_settings=_PASS_THROUGH, add_help_option=False)
def bench_reports(ctx: typer.Context) -> None:
    """Finance reports on a synthetic year of 1,000,000 postings: time and peak memory of each
    report on SQLite and PostgreSQL; arguments go to kassa_dev.bench.reports."""
    _run("kassa_dev.bench.reports", ctx)


@bench_app.command("scaleout", context_settings=_PASS_THROUGH, add_help_option=False)
def bench_scaleout(ctx: typer.Context) -> None:
    """Every role twice as separate processes on PostgreSQL and the local chains, under load,
    with a process SIGKILLed and restarted regularly; arguments go to
    kassa_dev.bench.scaleout."""
    _run("kassa_dev.bench.scaleout", ctx)


@bench_app.command("api", context_settings=_PASS_THROUGH, add_help_option=False)
def bench_api(ctx: typer.Context) -> None:
    """API load benchmark with wrk (usage posting, balance, hold, /healthz; then the books are
    checked); arguments go to kassa_dev.bench.api."""
    _run("kassa_dev.bench.api", ctx)


@bench_app.command("http-cost", context_settings=_PASS_THROUGH, add_help_option=False)
def bench_http_cost(ctx: typer.Context) -> None:
    """Server CPU per API request, one request at a time (/healthz, balance, usage), optionally
    against another source tree side by side; arguments go to kassa_dev.bench.http_cost."""
    _run("kassa_dev.bench.http_cost", ctx)
