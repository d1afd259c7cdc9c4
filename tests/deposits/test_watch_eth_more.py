"""More of the Ethereum watcher on ganache: a look-alike token is recorded and ignored.

docs/domain.md §4, look-alike tokens: only the canonical token contract counts. A second TestUSDT —
same code, same name, symbol and decimals, a different address — pays the customer's deposit
address with a real signed ``transfer``; the watcher records it as ``ignored`` with the contract
named in the reason and never credits it, while a real USDT payment to the same address in the
same run is credited. Both databases; the watcher starts at the tip it finds.
"""

from __future__ import annotations

import collections
import json
import uuid

from sqlalchemy import select

from kassa.accounts import service as accounts
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.eth.scanner import EthFinality, EthScanner
from kassa.chains.network import Chain
from kassa.chains.scanning import SenderKind
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.model import DepositStatus
from kassa.deposits.runtime import derivers, dust_thresholds
from kassa.deposits.settings import ChainsSettings
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.ledger.accounts import get_balance
from kassa.ledger.model import TransactionKind
from kassa.ledger.tables import ledger_transaction
from kassa.money import USD, USDT_ERC20, Money
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devnet import ganache
from kassa_dev.devnet.faucet import DevnetEndpoints, Faucet
from kassa_dev.devnet.testing import GanacheNode

SETTINGS = ChainsSettings()


def ledger_deposits(db: Database) -> collections.Counter[uuid.UUID]:
    """Ledger deposit transactions per deposit id."""
    with db.transaction() as conn:
        rows = conn.execute(
            select(ledger_transaction.c.metadata_json).where(
                ledger_transaction.c.kind == TransactionKind.DEPOSIT.value
            )
        ).all()
    return collections.Counter(uuid.UUID(json.loads(r[0])["deposit_id"]) for r in rows)


def test_a_look_alike_erc20_paying_the_address_is_ignored_and_never_credited(
    db: Database, ganache_node: GanacheNode
) -> None:
    w3 = ganache_node.web3()
    look_alike = ganache.deploy_test_usdt(w3)
    assert look_alike != ganache_node.usdt_address
    with EthRpc(ganache_node.url) as rpc:
        scanner = EthScanner(
            rpc,
            usdt_contract=ganache_node.usdt_address,
            confirmations=2,
            finality=EthFinality.CONFIRMATIONS,
        )
        head = scanner.head()
        clock = ManualClock(scanner.block(head.height, frozenset()).time)
        pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
        pricing.refresh()
        with db.transaction() as conn:
            customer = accounts.create(conn, external_id="erc20", now=clock.now(), request=None)
            address, _ = addresses.get_or_create(
                conn, customer.id, derivers(SETTINGS)[Chain.ETH], clock.now()
            )
        config = WatcherConfig(
            Chain.ETH, dust=dust_thresholds(SETTINGS, Chain.ETH), start_height=head.height + 1
        )
        watcher = Watcher(db, clock, scanner, pricing, config)

        fake_faucet = Faucet(DevnetEndpoints(eth_url=ganache_node.url, usdt_erc20=look_alike))
        fake_txid = fake_faucet.fund(address.address, Money.parse("1000", USDT_ERC20))
        real_txid = ganache_node.faucet().fund(address.address, Money.parse("5", USDT_ERC20))
        for _ in range(3):  # instamine: both payments end up 2+ confirmations deep
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        watcher.tick()
        watcher.tick()

    with db.transaction() as conn:
        found = {d.txid: d for d in records.for_account(conn, customer.id)}
        balance = get_balance(conn, customer.ledger_account_id).posted
        fake_history = records.events(conn, found[fake_txid].id)
    fake, real = found[fake_txid], found[real_txid]
    assert fake.asset == "USDT-ERC20" and fake.amount == 1_000_000_000
    assert fake.token_contract == look_alike
    assert (fake.sender, fake.sender_kind) == (ganache.dev_account(0).address, SenderKind.KNOWN)
    assert fake.status is DepositStatus.IGNORED
    reason = f"token contract {look_alike} is not the canonical USDT-ERC20"
    assert fake.status_reason == reason
    assert fake.rate_lock_id is None and fake.credit_count == 0
    assert fake_history == [(None, "ignored", reason)]

    assert real.token_contract == ganache_node.usdt_address
    assert real.status is DepositStatus.CREDITED
    assert balance == Money.parse("5", USD)  # the look-alike's 1000 "USDT" count for nothing
    assert ledger_deposits(db) == collections.Counter({real.id: 1})
