"""The `kassa` command for operators: one module per command group.

- `kassa.cli.run` — the processes: ``migrate``, ``serve``, ``worker``, ``payout-worker``,
  ``watch``, ``up``;
- `kassa.cli.keys` — ``kassa keys …``, API keys;
- `kassa.cli.rates` — ``kassa rates …``, USD rates;
- `kassa.cli.reports` — ``kassa reports …``, the finance reports;
- `kassa.cli.payouts` — ``kassa payouts …``, the review queue, approve, reject and approve-fee;
- `kassa.cli.disputes` — ``kassa disputes …``, open, list, show and resolve disputes;
- `kassa.cli.webhooks` — ``kassa webhooks …``, endpoints, the delivery log, redelivery, replay;
- `kassa.cli.doctor` — ``kassa doctor``, the books' integrity checks;
- `kassa.cli.health` — ``kassa health``, whether a role can work (container healthchecks);
- `kassa.cli.signer` — ``kassa signer …``, the payout signer's key files;
- groups that installed tools add through the ``kassa.cli`` entry points (`kassa.plugins`): the
  development tools add ``kassa devnet …`` and ``kassa bench …``.

Each command imports what it uses in its own body, so ``kassa --help`` and the light commands do
not pay for the web framework, the database layer or the chain libraries.

Settings come from `kassa.config.load_settings`: KASSA_* environment variables over the
``--config`` TOML file over defaults. ``--config FILE`` is an option of the root command and is
accepted anywhere on the line (``kassa --config F up`` and ``kassa up --config F`` alike), so
``./dev run --config F`` works too.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from kassa.cli import (
    disputes,
    doctor,
    health,
    keys,
    payouts,
    rates,
    reconcile,
    reports,
    run,
    signer,
    webhooks,
)
from kassa.plugins import COMMANDS_GROUP

CONFIG_OPTION = "--config"


def hoist_config(args: list[str]) -> list[str]:
    """`args` with every ``--config FILE`` (or ``--config=FILE``) moved to the front, where the
    root command reads it: ``kassa up --config FILE`` means ``kassa --config FILE up``.

    Nothing after a ``--`` is touched (it belongs to the command as it is)."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        if arg == CONFIG_OPTION and index + 1 < len(args):
            hoisted.extend(args[index : index + 2])
            index += 2
            continue
        if arg.startswith(CONFIG_OPTION + "="):
            hoisted.append(arg)
        else:
            rest.append(arg)
        index += 1
    return hoisted + rest


class _ConfigAnywhere(TyperGroup):
    """The root group, taking ``--config`` before or after the command's name."""

    # `ctx` is typer's vendored click context, which typer does not export under its own name.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_config(args))


# Plain help and errors (rich_markup_mode=None, here and in every group): typer's rich output
# costs more to import than the rest of `kassa --help` together.
app = typer.Typer(
    cls=_ConfigAnywhere,
    rich_markup_mode=None,
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
app.command()(doctor.doctor)
app.command()(health.health)
app.add_typer(keys.app, name="keys")
app.add_typer(rates.app, name="rates")
app.add_typer(reports.app, name="reports")
app.add_typer(payouts.app, name="payouts")
app.add_typer(disputes.app, name="disputes")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(reconcile.app, name="reconcile")
app.add_typer(signer.app, name="signer")


def add_commands(app: typer.Typer, *, group: str = COMMANDS_GROUP) -> list[str]:
    """Add every installed entry point of `group` to `app`; return their names, sorted.

    The entry point's name is the command's: a `typer.Typer` becomes a command group, a function
    a command; anything else is refused, so a broken plug-in is seen at once, not half-loaded.
    """
    names = []
    for point in sorted(entry_points(group=group), key=lambda point: point.name):
        plugin = point.load()
        if isinstance(plugin, typer.Typer):
            app.add_typer(plugin, name=point.name)
        elif callable(plugin):
            app.command(point.name)(plugin)
        else:
            raise TypeError(
                f"entry point {point.name} = {point.value} in {group} is neither a typer app "
                "nor a function"
            )
        names.append(point.name)
    return names


add_commands(app)


def main() -> None:
    app()
