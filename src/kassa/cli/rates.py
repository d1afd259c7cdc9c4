"""`kassa rates …`: the current USD rates with every quote behind them, a refresh, and the rate in
force at a past time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from kassa.cli._common import database_of, fail, migrated_database, require_head, say, settings_of

if TYPE_CHECKING:
    from kassa.config import Settings
    from kassa.db import Database
    from kassa.pricing.history import RateSample
    from kassa.pricing.service import PricingService

app = typer.Typer(
    rich_markup_mode=None, help="USD rates: current, at a time, refresh.", no_args_is_help=True
)


def _pricing(settings: Settings, database: Database) -> PricingService:
    from kassa.clock import DatabaseClock
    from kassa.wiring import pricing_of

    return pricing_of(settings, database, DatabaseClock())


def _print_rate(sample: RateSample) -> None:
    from kassa.pricing.model import price_text

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


@app.command("show")
def rates_show(
    ctx: typer.Context,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Fetch from the sources first")
    ] = False,
) -> None:
    """Current aggregated rates with every quote behind them."""
    from kassa.clock import DatabaseClock
    from kassa.pricing.errors import NoRate
    from kassa.pricing.model import Symbol

    with migrated_database(ctx, pool_size=2) as (settings, database):
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


@app.command("refresh")
def rates_refresh(ctx: typer.Context) -> None:
    """Fetch from the configured sources now and store the aggregated rates."""
    with migrated_database(ctx, pool_size=2) as (settings, database):
        result = _pricing(settings, database).refresh()
    for sample in result.samples.values():
        _print_rate(sample)
    for symbol, reason in result.missing.items():
        typer.echo(f"{symbol.value:<5} no rate: {reason}")
    if result.missing:
        raise typer.Exit(3)


@app.command("at")
def rates_at(
    ctx: typer.Context,
    asset: Annotated[str, typer.Argument(help="BTC, ETH, TRX, USDT, USDT-ERC20 or USDT-TRC20")],
    time: Annotated[
        str, typer.Argument(help="ISO 8601 time with offset, e.g. 2026-11-20T14:03:11Z")
    ],
) -> None:
    """The rate in force at TIME, with the quotes behind it."""
    from kassa.clock import parse_time
    from kassa.errors import KassaError
    from kassa.pricing.errors import NoRate
    from kassa.pricing.model import UnknownSymbol, symbol_of

    settings = settings_of(ctx)
    try:
        symbol = symbol_of(asset)
    except UnknownSymbol as error:
        fail(str(error), 2)
    try:
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
