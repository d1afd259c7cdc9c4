"""Binding quotes end to end on ganache and the TRON simulator (issue 14), with the chain's fee
raised for real between the quote and the payout: ETH and USDT-ERC20 on ganache, USDT-TRC20 on
the simulator (BTC is `test_payouts_quotes_e2e.py`).

Each payout is quoted at the chain's live fees (`FeeQuotes`), committed by its quote id and
sent by the real payout worker. Then, read from the chain: the destination received exactly the
quoted net coins; the ledger: ``house:network-fees:USD`` moved by what the chain took (valued at
the payout-time rate) minus the fee the customer was charged, and the customer's balance fell
by the gross.

How the fee rises:
- ganache has no call that sets the base fee, so blocks are filled the way a busy network fills
  them (`ganache.congest`): EIP-1559 raises the base fee an eighth per full block, and the
  quote's `eth_feeHistory`, the worker's estimate and the block all follow;
- the simulator's energy price is raised like a passed proposal (`POST /debug/energy-price`):
  `getchainparameters` reports it and blocks burn it.

Within `fee_wait_percent` (200 %) of the quoted fee the quoted coins arrive and the house pays
the rise; past it the payout waits with its reason until an operator lets the house pay
(`kassa payouts approve-fee`), then the quoted coins arrive.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from kassa.cli import app
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.money import ETH, TRX, USD, USDT_ERC20, USDT_TRC20, Asset, Money, asset, convert_up
from kassa.payouts.fee_quotes import FeeQuotes
from kassa.payouts.model import FEE_ABOVE_QUOTE, PayoutRequest, RequestStatus
from kassa.payouts.settings import PayoutSettings
from kassa.payouts.tables import payout_request, payout_tx
from kassa_dev.devnet import ganache, tron_node
from kassa_dev.devnet.testing import GanacheNode
from kassa_dev.devnet.tron.config import FeeSchedule

if TYPE_CHECKING:
    from tests.payouts.conftest import Stage

    from kassa.accounts.service import CustomerAccount

# The chains are the subject here; the claims and the books, which differ by dialect, run on both
# in test_payouts_quotes_e2e.py. PostgreSQL, as in production.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize("databases", ["postgres"], indirect=True),
]

FEE_RATES = {"ETH": (3_000, 1), "TRX": (1, 4)}  # the static rates of the local stack, USD
TIP_WEI = PayoutSettings().eth.priority_fee_wei  # what the worker tips; the quote never less
USDT_NEW_HOLDER_GAS = PayoutSettings().fee_quotes.erc20_transfer_gas_new_holder
DEFAULT_ENERGY_PRICE = FeeSchedule().energy_price


@contextlib.contextmanager
def _live_quotes(stage: Stage) -> Iterator[Stage]:
    """Quotes priced from the node, as `kassa up` wires them (`Services.payouts`)."""
    live = FeeQuotes(stage.settings, stage.chains)
    stage.payouts = dataclasses.replace(stage.payouts, fee_quotes=live)
    try:
        yield stage
    finally:
        live.close()


@pytest.fixture
def ganache_stage(eth_stage: Stage, ganache_node: GanacheNode) -> Iterator[Stage]:
    """The ETH stage quoting live fees; afterwards the base fee falls back to where it was
    (empty blocks), so the session's later tests on this node see the fees they would have."""
    w3 = ganache_node.web3()
    before = ganache.next_base_fee(w3)
    with _live_quotes(eth_stage) as stage:
        yield stage
    ganache.calm(w3, max(before, 16))


@pytest.fixture
def simulator_stage(tron_stage: Stage) -> Iterator[Stage]:
    """The TRON stage quoting live fees; afterwards the energy price is the configured one."""
    with _live_quotes(tron_stage) as stage:
        yield stage
    tron_node.set_energy_price(tron_stage.node.url, DEFAULT_ENERGY_PRICE)


def _quoted_withdrawal(stage: Stage, coin: Asset) -> tuple[CustomerAccount, str, PayoutRequest]:
    """A $25.00 withdrawal of ``coin`` to a fresh address, quoted at the chain's live fee and
    committed by its quote id."""
    customer = stage.customer("100.00")
    destination = stage.fresh_address()
    amount = Money.parse("25.00", USD)
    decision, quote = stage.payouts.quote_withdrawal(customer, amount, coin, destination)
    assert quote is not None, decision
    assert decision.breakdown.network_fee_source == "live"
    locks = stage.payouts.quote_locks(quote.id)
    with stage.db.transaction() as conn:
        request = stage.payouts.create_withdrawal(
            conn,
            customer,
            amount,
            coin,
            destination,
            locks,
            request=Request.of(IdempotencyKey("test", uuid.uuid4().hex), "w", {}),
            actor="test",
        )
    assert (request.quote_id, request.status) == (quote.id, RequestStatus.APPROVED)
    assert request.net_native == decision.breakdown.net_native
    return customer, destination, request


def _fee_paid(stage: Stage, request: PayoutRequest) -> Money:
    """What the chain took for the transaction that paid ``request`` (the fee asset)."""
    with stage.db.transaction() as conn:
        tx = conn.execute(
            select(payout_tx.c.status, payout_tx.c.fee_paid_native, payout_tx.c.fee_asset)
            .join(payout_request, payout_request.c.tx_id == payout_tx.c.id)
            .where(payout_request.c.id == request.id)
        ).one()
    assert tx.status == "confirmed"
    return Money(int(tx.fee_paid_native), asset(tx.fee_asset))


def _paid_as_quoted(
    stage: Stage,
    coin: Asset,
    customer: CustomerAccount,
    destination: str,
    request: PayoutRequest,
    house_before: int,
) -> Money:
    """The destination holds exactly the quoted coins, the books say who paid what; returns
    the fee the chain took."""
    done = stage.request(request.id)
    assert done.status is RequestStatus.CONFIRMED
    assert stage.received(destination, coin) == request.net_native.amount
    assert (done.net_native, done.net_usd, done.network_fee_usd) == (
        request.net_native,
        request.net_usd,
        request.network_fee_usd,
    )
    paid = _fee_paid(stage, request)
    paid_usd = convert_up(paid, *FEE_RATES[paid.asset.code.value], USD)
    house = stage.account_balance("house:network-fees:USD")
    assert house - house_before == (paid_usd - request.network_fee_usd).amount
    assert stage.available(customer) == Money.parse("75.00", USD)  # $100 − the $25 gross
    assert stage.account_balance("clearing:payouts:USD") == 0
    return paid


def _approve_fee_from_the_shell(stage: Stage, request: PayoutRequest, tmp_path: Path) -> None:
    """`kassa payouts approve-fee ID` as an operator types it, on the stage's database."""
    config = tmp_path / "kassa.toml"
    url = stage.db.engine.url.render_as_string(hide_password=False)
    config.write_text(f'data_dir = "{tmp_path / "data"}"\ndatabase_url = "{url}"\ndevnet = false\n')
    env = {"LOGNAME": "ann", "USER": "ann", "KASSA_DATABASE_URL": None, "KASSA_DATA_DIR": None}
    result = CliRunner().invoke(
        app,
        ["--config", str(config), "payouts", "approve-fee", str(request.id), "--note", "spike"],
        env=env,
    )
    assert (result.exit_code, result.stdout.strip()) == (0, "approved"), result.stderr
    assert stage.request(request.id).fee_approved_by == "operator:cli:ann"


def _base_fee_for(quoted: Money, gas: int, percent: int) -> int:
    """The base fee at which ``gas`` at the worker's tip costs ``percent`` % of ``quoted``."""
    return quoted.amount * percent // (100 * gas) - TIP_WEI


def test_eth_and_usdt_erc20_arrive_as_quoted_when_the_base_fee_rises(
    ganache_stage: Stage, ganache_node: GanacheNode, tmp_path: Path
) -> None:
    stage = ganache_stage
    w3 = ganache_node.web3()
    worker = stage.worker()

    # ETH, the base fee raised to 150 % of the quoted fee: within the factor, the house pays.
    customer, destination, request = _quoted_withdrawal(stage, ETH)
    quoted = request.network_fee_native
    assert quoted is not None and quoted.asset == ETH
    ganache.congest(w3, _base_fee_for(quoted, 21_000, 150))
    house = stage.account_balance("house:network-fees:USD")
    stage.pay(worker, request.id)
    paid = _paid_as_quoted(stage, ETH, customer, destination, request, house)
    assert paid.amount > quoted.amount  # the fee did rise, past what the customer was charged

    # USDT-ERC20 (gas in ETH), raised to 300 %: past the factor, it waits for an operator.
    customer, destination, request = _quoted_withdrawal(stage, USDT_ERC20)
    quoted = request.network_fee_native
    assert quoted is not None and quoted.asset == ETH
    ganache.congest(w3, _base_fee_for(quoted, USDT_NEW_HOLDER_GAS, 300))
    report = worker.run_once()
    assert request.id in report.waiting
    waiting = stage.request(request.id)
    assert waiting.status is RequestStatus.APPROVED
    assert (waiting.wait_reason or "").startswith(FEE_ABOVE_QUOTE)
    assert stage.received(destination, USDT_ERC20) == 0

    _approve_fee_from_the_shell(stage, request, tmp_path)
    house = stage.account_balance("house:network-fees:USD")
    stage.pay(worker, request.id)
    paid = _paid_as_quoted(stage, USDT_ERC20, customer, destination, request, house)
    assert paid.amount * 100 > quoted.amount * 200  # the house paid past the factor


def test_usdt_trc20_arrives_as_quoted_when_the_energy_price_rises(
    simulator_stage: Stage, tmp_path: Path
) -> None:
    stage = simulator_stage
    url = stage.node.url
    worker = stage.worker()
    tron_node.set_energy_price(url, DEFAULT_ENERGY_PRICE)

    # 420 → 630 sun per energy: the fee (mostly energy) is ~150 % of the quote, within 200 %.
    customer, destination, request = _quoted_withdrawal(stage, USDT_TRC20)
    quoted = request.network_fee_native
    assert quoted is not None and quoted.asset == TRX
    tron_node.set_energy_price(url, DEFAULT_ENERGY_PRICE * 3 // 2)
    house = stage.account_balance("house:network-fees:USD")
    stage.pay(worker, request.id)
    paid = _paid_as_quoted(stage, USDT_TRC20, customer, destination, request, house)
    assert quoted.amount < paid.amount <= quoted.amount * 2

    # Quoted at 420 again, then 1 300 sun: ~300 % of the quote, past the factor.
    tron_node.set_energy_price(url, DEFAULT_ENERGY_PRICE)
    customer, destination, request = _quoted_withdrawal(stage, USDT_TRC20)
    quoted = request.network_fee_native
    assert quoted is not None
    tron_node.set_energy_price(url, 1_300)
    assert request.id in worker.run_once().waiting
    assert (stage.request(request.id).wait_reason or "").startswith(FEE_ABOVE_QUOTE)
    assert stage.received(destination, USDT_TRC20) == 0

    _approve_fee_from_the_shell(stage, request, tmp_path)
    house = stage.account_balance("house:network-fees:USD")
    stage.pay(worker, request.id)
    paid = _paid_as_quoted(stage, USDT_TRC20, customer, destination, request, house)
    assert paid.amount > quoted.amount * 2
