"""`kassa bench …`: the benchmarks, each a module with its own arguments (try `--help`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import typer

app = typer.Typer(help="Benchmarks.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@app.command(
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
        _fail("the ledger benchmark (kassa.bench.ledger) is not part of this installation")
    entry: Callable[[list[str] | None], int] = module.main
    raise typer.Exit(entry(list(ctx.args)))


@app.command(
    "watchers",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench_watchers(ctx: typer.Context) -> None:
    """Deposit-watcher benchmark on the local chains; arguments go to kassa.bench.watchers."""
    module = importlib.import_module("kassa.bench.watchers")
    entry: Callable[[list[str] | None], int] = module.main
    raise typer.Exit(entry(list(ctx.args)))


@app.command(
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
