"""`kassa reconcile`: reconcile the ledger, the records and the chains now, and book
hot-wallet funding (`kassa reconcile fund-hot`).

A run prints its progress on stderr, then the open breaks (new, persisting) with their class,
object, expected, actual and difference, and the coverage; ``--out DIR`` also writes
``reconciliation-<date>.json`` and ``.csv`` there, and ``--json`` prints the whole report on
stdout. It exits 1 when any break is open, 0 when everything reconciles. The run's breaks are
stored (their lifecycle is kept across runs) and the operator event
``reconciliation.completed`` is raised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kassa.cli._common import database_of, fail, require_head, say, settings_of

app = typer.Typer(
    rich_markup_mode=None,
    help="Reconcile the ledger, the records and the chains; book hot-wallet funding.",
    invoke_without_command=True,
)


@app.callback()
def reconcile(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option(help="Also write reconciliation-<date>.json and .csv here")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Run a reconciliation now (read-only but for its own breaks and event)."""
    if ctx.invoked_subcommand is not None:
        return
    from kassa.cli.run import _clock, _on_devnet
    from kassa.reports.reconciliation.run import as_json as report_json
    from kassa.reports.reconciliation.run import write_files
    from kassa.wiring import reconciler_of

    settings = _on_devnet(settings_of(ctx))
    with database_of(settings, pool_size=2) as database:
        require_head(database)
        reconciler = reconciler_of(settings, database, _clock(settings), say)
        try:
            outcome = reconciler.run(trigger="cli")
        finally:
            reconciler.close()
    summary = outcome.summary
    if out is not None:
        day = str(summary["started_at"])[:10]
        for path in write_files(out, day, summary):
            say(f"wrote {path}")
    if as_json:
        typer.echo(report_json(summary), nl=False)
    else:
        for note in summary["notes"]:
            say(f"note: {note}")
        for item in outcome.open_breaks:
            typer.echo(
                f"{item['status']:<11}{item['class']:<26}{item['chain'] or '-':<6}"
                f"{item['asset'] or '-':<12}{item['object_id']}  expected {item['expected']} "
                f"actual {item['actual']} difference {item['difference']}"
            )
        solvency = summary["solvency"]
        typer.echo(
            f"coverage {solvency['coverage']} (assets {solvency['assets_usd_micro']} micro-USD, "
            f"liabilities {solvency['liabilities_usd_micro']} micro-USD)"
        )
    say(f"{outcome.new} new, {outcome.persisting} persisting, {outcome.resolved} resolved break(s)")
    if outcome.open_breaks:
        raise typer.Exit(1)


@app.command("fund-hot")
def fund_hot(
    ctx: typer.Context,
    amount: Annotated[str, typer.Argument(help="Coins moved into the hot wallet, e.g. 2.5")],
    asset_code: Annotated[str, typer.Argument(metavar="ASSET", help="BTC, ETH, USDT-ERC20, …")],
    txid: Annotated[str, typer.Option(help="The funding transaction (booked once per txid)")],
) -> None:
    """Book coins moved into a hot wallet from outside Kassa (negative: taken out of it)."""
    from kassa.assets import on_chain
    from kassa.cli.payouts import operator_actor
    from kassa.cli.run import _clock
    from kassa.money import Money, MoneyError, asset
    from kassa.reports.reconciliation.funding import book_hot_funding

    try:
        coin = asset(asset_code)
        money = Money.parse(amount, coin)
    except MoneyError as error:
        fail(str(error), 2)
    if not on_chain(coin) or money.is_zero:
        fail("a hot wallet holds BTC, ETH, USDT-ERC20, TRX or USDT-TRC20, and a non-zero amount", 2)
    settings = settings_of(ctx)
    clock = _clock(settings)
    with database_of(settings, pool_size=1) as database:
        require_head(database)
        with database.transaction() as conn:
            transaction_id = book_hot_funding(
                conn, money, reference=txid, actor=operator_actor(), now=clock.now(conn)
            )
    say(f"booked {money.format()} {coin.code} into the hot wallet: transaction {transaction_id}")
