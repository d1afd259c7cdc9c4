"""`kassa devnet`: the local chains (ganache, bcoin regtest, the TRON simulator) for development.

    kassa devnet up       start what is not running, deploy TestUSDT, mine the BTC faucet's coins
    kassa devnet status   per chain: running?, pid, port, height, finalized/solid height
    kassa devnet down     stop every devnet process (by pid)
    kassa devnet fund ADDRESS AMOUNT ASSET
                          pay ADDRESS from the devnet faucet; prints the txid
    kassa devnet serve --chain X [--host H] [--port P] [--state-dir D]
                          one chain in the foreground (the compose file's devnet profile)
    kassa devnet rates set SYMBOL USD
                          move the market: SYMBOL's static rate from now on, while Kassa runs

State lives in `<data_dir>/devnet/` (see `kassa_dev.devnet.stack`). The data directory is
`--data-dir`, else Kassa's settings (`KASSA_DATA_DIR`, the `--config` file of the root command).
Results go to stdout (endpoints, the status table, a txid); progress goes to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from kassa.chains.network import Chain
from kassa.money import ASSETS, AssetCode, Money, MoneyError
from kassa_dev.devnet.settings import DevnetSettings

if TYPE_CHECKING:
    from kassa_dev.devnet.stack import ChainStatus, Devnet

# The chain machinery (web3, the process manager, the faucet) is imported inside the commands:
# every `kassa` command, `kassa --help` included, imports this module.

__all__ = ["devnet_app"]

FUNDABLE = (
    AssetCode.BTC,
    AssetCode.ETH,
    AssetCode.TRX,
    AssetCode.USDT_ERC20,
    AssetCode.USDT_TRC20,
)

_DEFAULTS = DevnetSettings()

devnet_app = typer.Typer(
    rich_markup_mode=None,
    help="Local chains for development and the demo: ganache, bcoin regtest, TRON simulator.",
    no_args_is_help=True,
    add_completion=False,
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _say(message: str) -> None:
    typer.echo(message, err=True)


@devnet_app.callback()
def _devnet_root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Kassa's data directory (default: from Kassa's settings); state goes in devnet/",
        ),
    ] = None,
) -> None:
    ctx.obj = data_dir


def _devnet(ctx: typer.Context) -> Devnet:
    from kassa_dev.devnet.stack import Devnet

    data_dir: Path | None = ctx.obj if isinstance(ctx.obj, Path) else None
    if data_dir is None:
        # Imported here: only needed when --data-dir is not given.
        from kassa.config import load_settings

        # The root `kassa` command keeps its --config path in its context object.
        root = ctx.find_root().obj
        data_dir = load_settings(config_file=root if isinstance(root, Path) else None).data_dir
    return Devnet(data_dir, echo=_say)


@devnet_app.command()
def up(
    ctx: typer.Context,
    eth_port: Annotated[int, typer.Option(help="ganache JSON-RPC port")] = _DEFAULTS.eth_port,
    btc_port: Annotated[int, typer.Option(help="bcoin HTTP/RPC port")] = _DEFAULTS.btc_port,
    tron_port: Annotated[int, typer.Option(help="TRON simulator port")] = _DEFAULTS.tron_port,
    eth_block_time: Annotated[
        int, typer.Option(help="seconds between Ethereum blocks (0: a block per transaction)")
    ] = _DEFAULTS.eth_block_time,
    btc_block_interval: Annotated[
        float, typer.Option(help="seconds between Bitcoin blocks (0: no miner)")
    ] = _DEFAULTS.btc_block_interval,
    tron_block_interval: Annotated[
        float, typer.Option(help="seconds between TRON blocks")
    ] = _DEFAULTS.tron_block_interval,
) -> None:
    """Start the local chains (idempotent) and print their endpoints."""
    from kassa_dev.devnet.processes import ProcessError
    from kassa_dev.devnet.stack import DevnetError
    from kassa_dev.devnet.tools import ChainToolsError

    devnet = _devnet(ctx)
    settings = DevnetSettings(
        eth_port=eth_port,
        btc_port=btc_port,
        tron_port=tron_port,
        eth_block_time=eth_block_time,
        btc_block_interval=btc_block_interval,
        tron_block_interval=tron_block_interval,
    )
    try:
        endpoints = devnet.up(settings)
    except (ChainToolsError, ProcessError, DevnetError) as error:
        _fail(f"{error}\n(processes already started keep running; `kassa devnet down` stops them)")
    typer.echo(f"ethereum  {endpoints.eth_url}  chain id 1337  USDT-ERC20 {endpoints.usdt_erc20}")
    # A devnet-only key, stored in devnet.json too; printed so it can go into Kassa's settings.
    typer.echo(f"bitcoin   {endpoints.btc_url}  regtest (bcrt1…)  API key {endpoints.btc_api_key}")
    if endpoints.tron_url:
        typer.echo(f"tron      {endpoints.tron_url}")
    typer.echo(f"state     {devnet.run_dir}")


@devnet_app.command()
def serve(
    chain: Annotated[Chain, typer.Option("--chain", help="The chain to run")],
    host: Annotated[str, typer.Option(help="Listen address")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Listen port (default: the devnet's port of the chain)")
    ] = None,
    state_dir: Annotated[Path, typer.Option(help="Where the chain is kept across restarts")] = Path(
        "devnet-state"
    ),
    block_interval: Annotated[
        float | None,
        typer.Option(help="Seconds between blocks (default: as `kassa devnet up` paces them)"),
    ] = None,
) -> None:
    """Run one chain in the foreground until stopped (for a container; see
    kassa_dev.devnet.serve)."""
    from kassa_dev.devnet.processes import ProcessError
    from kassa_dev.devnet.serve import ServeError
    from kassa_dev.devnet.serve import serve as run
    from kassa_dev.devnet.tools import ChainToolsError

    ports = {Chain.ETH: _DEFAULTS.eth_port, Chain.BTC: _DEFAULTS.btc_port}
    paces = {Chain.ETH: _DEFAULTS.eth_block_time, Chain.BTC: _DEFAULTS.btc_block_interval}
    chosen = port if port is not None else ports.get(chain, _DEFAULTS.tron_port)
    pace = block_interval if block_interval is not None else paces.get(chain)
    try:
        code = run(
            chain,
            host,
            chosen,
            state_dir,
            _say,
            block_interval=_DEFAULTS.tron_block_interval if pace is None else pace,
        )
    except (ServeError, ChainToolsError, ProcessError) as error:
        _fail(str(error))
    raise typer.Exit(code)


@devnet_app.command()
def status(ctx: typer.Context) -> None:
    """Show each chain: running?, pid, port, height and finalized/solid height."""
    rows = _devnet(ctx).status()
    typer.echo(f"{'chain':<10}{'state':<10}{'pid':>8}{'port':>7}{'height':>9}{'final':>9}")
    for row in rows:
        typer.echo(_status_line(row))


def _status_line(row: ChainStatus) -> str:
    def show(value: int | None) -> str:
        return "-" if value is None else str(value)

    state = "running" if row.running else "stopped"
    line = (
        f"{row.chain:<10}{state:<10}{show(row.pid):>8}{show(row.port):>7}"
        f"{show(row.height):>9}{show(row.final_height):>9}"
    )
    return f"{line}  ({row.error})" if row.error else line


@devnet_app.command()
def down(ctx: typer.Context) -> None:
    """Stop every devnet process."""
    stopped = _devnet(ctx).down()
    _say(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@devnet_app.command()
def fund(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="recipient address on the asset's chain")],
    amount: Annotated[str, typer.Argument(help="decimal amount in whole units, e.g. 1.5")],
    asset: Annotated[str, typer.Argument(help="BTC, ETH, TRX, USDT-ERC20 or USDT-TRC20")],
) -> None:
    """Pay ADDRESS from the devnet faucet with a real transaction; print the txid."""
    from kassa_dev.devnet.faucet import FaucetError

    if asset not in {code.value for code in FUNDABLE}:
        _fail(f"asset must be one of {', '.join(c.value for c in FUNDABLE)}, not {asset!r}")
    try:
        money = Money.parse(amount, ASSETS[asset])
    except MoneyError as error:
        _fail(str(error))
    if money.is_zero:
        _fail("amount must be positive")
    try:
        txid = _devnet(ctx).faucet().fund(address, money)
    except FaucetError as error:
        _fail(str(error))
    _say(f"sent {money} to {address}")
    typer.echo(txid)


rates_app = typer.Typer(
    rich_markup_mode=None,
    help="The devnet market: move a static rate while Kassa runs (no restart).",
    no_args_is_help=True,
    add_completion=False,
)
devnet_app.add_typer(rates_app, name="rates")


@rates_app.command("set")
def set_rate(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Argument(help="BTC, ETH, TRX or USDT")],
    usd: Annotated[str, typer.Argument(help="USD per whole coin, e.g. 50000")],
) -> None:
    """Set SYMBOL's market rate to USD now, in Kassa's database (kassa.pricing.market): the next
    quote uses it and the static source keeps serving it. Devnet only (devnet = true)."""
    from decimal import Decimal, InvalidOperation

    from kassa.cli._common import database_of, settings_of
    from kassa.pricing import market
    from kassa.pricing.model import Symbol
    from kassa.pricing.service import rules_of
    from kassa.wiring import clock_of

    settings = settings_of(ctx)
    if not settings.devnet:
        _fail(
            "the market can only be moved on the devnet (devnet = true); real networks are "
            "priced by their sources"
        )
    try:
        which = Symbol(symbol.upper())
        rate = Decimal(usd)
    except (ValueError, InvalidOperation):
        symbols = ", ".join(s.value for s in Symbol)
        _fail(f"expected a symbol ({symbols}) and a decimal USD rate, got {symbol} {usd}")
    if not rate.is_finite() or rate <= 0 or -int(rate.as_tuple().exponent) > 12:
        _fail(f"a rate is a positive number of USD per coin (at most 12 decimals), not {usd}")
    clock = clock_of(settings)
    with database_of(settings, pool_size=1) as database, database.transaction() as conn:
        sample = market.set_rate(conn, which, rate, clock.now(conn), rules_of(settings.pricing))
    when = f"{sample.sampled_at:%Y-%m-%d %H:%M:%S} UTC"
    _say(f"{which} is now {sample.ask} USD (bid {sample.bid}) as of {when}")
    typer.echo(sample.id)
