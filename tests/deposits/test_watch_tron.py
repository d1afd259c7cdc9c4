"""TRON deposits end to end: the watcher over the real `TronScanner`, Kassa's java-tron
simulator, and both databases.

The faucet pays a customer's watch-only deposit address with real signed TRX and USDT-TRC20
transactions; the watcher records them as soon as they are in a block, keeps them `confirming`
while their block is above the solidified one, and credits them at the static demo rates (TRX
0.25, USDT 1.00) once it is solidified. The simulator is shared by the session and makes a block
every 0.5 s: the watcher starts at the tip it finds, and nothing assumes block numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kassa.accounts import service as accounts
from kassa.chains.hd import parse_account_key
from kassa.chains.network import Chain, TronNetwork
from kassa.chains.tron.api import TronApi
from kassa.chains.tron.scanner import TronScanner
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.derive import HdDeriver
from kassa.deposits.model import DepositStatus
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.events import outbox
from kassa.ledger.accounts import get_balance
from kassa.money import TRX, USD, USDT_TRC20, Money
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devkeys import dev_account_xpub
from kassa_dev.devnet.testing import TronNode

MNEMONIC = "abandon " * 11 + "about"
TRON_KEY = parse_account_key(dev_account_xpub(MNEMONIC, TronNetwork.DEVNET), TronNetwork.DEVNET)


@pytest.fixture
def scanner(tron_sim: TronNode) -> Iterator[TronScanner]:
    with TronApi(tron_sim.url) as api:
        yield TronScanner(api, usdt_contract=tron_sim.usdt_contract)


def test_trx_and_usdt_deposits_are_credited_once_solidified(
    db: Database, tron_sim: TronNode, scanner: TronScanner
) -> None:
    tip = scanner.head().height
    # Kassa's clock starts at chain time (not the wall clock: the simulator's time may have
    # been moved on), so the rates refreshed now are the ones in force at the deposits' blocks.
    clock = ManualClock(scanner.block(tip, frozenset()).time)
    pricing = PricingService(db, clock, PricingSettings())
    pricing.refresh([Symbol.TRX, Symbol.USDT])
    with db.transaction() as conn:
        customer = accounts.create(conn, external_id="tron-payer", now=clock.now(), request=None)
        address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(TRON_KEY), clock.now())
    watcher = Watcher(db, clock, scanner, pricing, WatcherConfig(Chain.TRON, start_height=tip))

    faucet = tron_sim.faucet()
    trx_txid = faucet.fund(address.address, Money(4_000_000, TRX))
    usdt_txid = faucet.fund(address.address, Money(2_500_000, USDT_TRC20))
    report = watcher.tick()

    assert report.recorded == 2 and not report.credited
    with db.transaction() as conn:
        seen = {d.txid: d for d in records.for_account(conn, customer.id)}
        assert get_balance(conn, customer.ledger_account_id).posted == Money(0, USD)
    assert seen.keys() == {trx_txid, usdt_txid}
    for deposit in seen.values():
        # Mined but above the solidified block: shown to the payer, not credited.
        assert deposit.status is DepositStatus.CONFIRMING
        assert deposit.status_reason is not None
        assert f"final once block {deposit.block_height} is final" in deposit.status_reason
        assert deposit.sender == tron_sim.genesis_address
    assert (seen[trx_txid].asset, seen[trx_txid].amount) == ("TRX", 4_000_000)
    assert (seen[usdt_txid].asset, seen[usdt_txid].amount) == ("USDT-TRC20", 2_500_000)
    assert seen[usdt_txid].token_contract == tron_sim.usdt_contract
    assert (
        seen[usdt_txid].block_time
        == scanner.block(seen[usdt_txid].block_height or 0, frozenset()).time
    )

    httpx.post(f"{tron_sim.url}/debug/mine", json={"blocks": 20}, timeout=10).raise_for_status()
    head = scanner.head()
    assert head.final_height >= max(d.block_height or 0 for d in seen.values())
    clock.set(max(clock.now(), scanner.block(head.height, frozenset()).time))
    report = watcher.tick()

    with db.transaction() as conn:
        credited = {d.txid: d for d in records.for_account(conn, customer.id)}
        balance = get_balance(conn, customer.ledger_account_id).posted
    assert sorted(report.credited) == sorted(d.id for d in credited.values())
    assert all(d.status is DepositStatus.CREDITED for d in credited.values())
    assert credited[trx_txid].usd_amount == Money.parse("1.00", USD).amount  # 4 TRX at 0.25
    assert credited[usdt_txid].usd_amount == Money.parse("2.50", USD).amount  # at 1.00
    assert balance == Money.parse("3.50", USD)

    # Exactly once: more blocks and ticks change nothing.
    again = watcher.tick()
    assert not again.credited and again.recorded == 0
    with db.transaction() as conn:
        assert get_balance(conn, customer.ledger_account_id).posted == Money.parse("3.50", USD)
        # Each deposit's events, in order (issue 15), and no more after the idle tick.
        for deposit in credited.values():
            assert outbox.types_of(conn, "deposit", deposit.id) == [
                "deposit.seen",
                "deposit.confirming",
                "deposit.credited",
            ]
