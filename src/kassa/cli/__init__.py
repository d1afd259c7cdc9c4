"""The `kassa` command for operators: one module per command group.

- `kassa.cli.run` — the processes: ``migrate``, ``serve``, ``worker``, ``payout-worker``,
  ``watch``, ``up``;
- `kassa.cli.keys` — ``kassa keys …``, API keys;
- `kassa.cli.rates` — ``kassa rates …``, USD rates;
- `kassa.cli.payouts` — ``kassa payouts …``, the review queue, approve and reject;
- groups that installed tools add through the ``kassa.cli`` entry points (`kassa.plugins`): the
  development tools add ``kassa devnet …`` and ``kassa bench …``.

Each command imports what it uses in its own body, so ``kassa --help`` and the light commands do
not pay for the web framework, the database layer or the chain libraries.

Settings come from `kassa.config.load_settings`: KASSA_* environment variables over the
``--config`` TOML file over defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kassa.cli import keys, payouts, rates, run
from kassa.plugins import command_groups

app = typer.Typer(
    name="kassa",
    help="Kassa: self-hosted crypto payment gateway.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML settings file (KASSA_* variables override it)"),
    ] = None,
) -> None:
    ctx.obj = config


app.command()(run.migrate)
app.command()(run.serve)
app.command()(run.worker)
app.command("payout-worker")(run.payout_worker)
app.command()(run.watch)
app.command()(run.up)
app.add_typer(keys.app, name="keys")
app.add_typer(rates.app, name="rates")
app.add_typer(payouts.app, name="payouts")
for _name, _group in command_groups():
    if not isinstance(_group, typer.Typer):
        raise TypeError(f"the kassa.cli entry point {_name!r} is not a typer app")
    app.add_typer(_group, name=_name)


def main() -> None:
    app()
