"""kassa-dev's commands for the `kassa` CLI: the plugin side of the ``kassa.cli`` entry points.

kassa-dev's pyproject.toml registers, in the entry-point group ``kassa.cli``,

    devnet = "kassa_dev.cli:devnet_app"     kassa devnet up|status|down|fund
    bench  = "kassa_dev.cli:bench_app"      kassa bench ledger|watchers|payouts

The contract: an entry point's name is the command name, and its object is a `typer.Typer`
(added as a command group) or a plain function (added as a command). The product CLI, which must
not import kassa_dev, loads whatever is installed with the code of `load_plugins` (stdlib and
typer only, so it can be copied as is). Without kassa-dev installed it finds nothing and the
`kassa` command has no devnet or bench commands.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points

import typer

from kassa_dev.devnet.cli import devnet_app

__all__ = ["ENTRY_POINT_GROUP", "bench_app", "devnet_app", "load_plugins"]

ENTRY_POINT_GROUP = "kassa.cli"

bench_app = typer.Typer(help="Benchmarks.", no_args_is_help=True)

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


@bench_app.command("payouts", context_settings=_PASS_THROUGH, add_help_option=False)
def bench_payouts(ctx: typer.Context) -> None:
    """Payout benchmark on the local chains (payouts/s, BTC batching fee saved); arguments go
    to kassa_dev.bench.payouts."""
    _run("kassa_dev.bench.payouts", ctx)


def load_plugins(app: typer.Typer, *, group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Add every installed ``kassa.cli`` entry point to `app`; return their names.

    A `typer.Typer` becomes a command group named after the entry point, a function a command.
    This is the product side of the contract, kept here until the product CLI takes it over:
    it uses nothing from kassa_dev.
    """
    names = []
    for entry_point in sorted(entry_points(group=group), key=lambda ep: ep.name):
        plugin = entry_point.load()
        if isinstance(plugin, typer.Typer):
            app.add_typer(plugin, name=entry_point.name)
        elif callable(plugin):
            app.command(entry_point.name)(plugin)
        else:
            raise TypeError(
                f"entry point {entry_point.name} = {entry_point.value} in {group} is neither "
                "a typer app nor a function"
            )
        names.append(entry_point.name)
    return names
