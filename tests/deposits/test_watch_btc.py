"""The deposit watcher end to end on Bitcoin: bcoin regtest, `BtcScanner`, both databases.

A customer's watch-only BIP84 deposit address receives a real signed transaction from the
devnet faucet key; the watcher scans from the tip it found at the start (the node is shared
by the whole session, so no block number is assumed), records it, waits for finality (2
confirmations here) and credits the USD value at the block-time rate. A reorg made with
``invalidateblock`` reverses the credit; the same transaction mined again credits it once more,
so the customer ends with one credit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import coincurve
import pytest

from kassa.accounts import service as accounts
from kassa.chains.btc.address import parse_btc_address
from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.btc.rpc import BtcRpc
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.btc.tx import (
    Coin,
    OutPoint,
    Transaction,
    TxOut,
    build_transaction,
    estimate_vsize,
    fee_for_vsize,
)
from kassa.chains.hd import parse_account_key
from kassa.chains.network import BtcNetwork, Chain
from kassa.chains.scanning import SenderKind
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.derive import HdDeriver
from kassa.deposits.model import DepositStatus
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.events import outbox
from kassa.ledger.accounts import get_balance
from kassa.money import USD, Money
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devkeys import dev_account_xpub
from kassa_dev.devnet import bitcoin as devbtc
from kassa_dev.devnet.testing import BitcoinNode

NET = BtcNetwork.REGTEST
MNEMONIC = "abandon " * 11 + "about"
KEY = parse_account_key(dev_account_xpub(MNEMONIC, NET), NET)
FAUCET_KEY = coincurve.PrivateKey(devbtc.faucet_key().private_key)
FAUCET = p2wpkh_address_for_key(FAUCET_KEY, NET)


def faucet_pays(node: BitcoinNode, address: str, amount: int) -> Transaction:
    """A signed faucet payment of `amount` satoshi to `address` (output 0), broadcast."""
    rpc = node.rpc()
    tip = rpc.height()
    # The oldest coins: still mature after the reorg test takes a few blocks away.
    [utxo] = sorted(
        (c for c in rpc.utxos(FAUCET.text) if c.spendable_at(tip) and c.value > 10 * amount),
        key=lambda c: c.height,
    )[:1]
    coin = Coin(OutPoint(utxo.txid, utxo.vout), utxo.value, utxo.script_pubkey)
    script = parse_btc_address(address, NET).script_pubkey
    fee = fee_for_vsize(estimate_vsize(1, [script, FAUCET.script_pubkey]), 2_000)
    outputs = [TxOut(amount, script), TxOut(utxo.value - amount - fee, FAUCET.script_pubkey)]
    signed = build_transaction([coin], outputs).sign([FAUCET_KEY])
    assert rpc.send_raw_transaction(signed.serialize()) == signed.txid
    return signed


@dataclass
class World:
    db: Database
    node: BitcoinNode
    scanner: BtcScanner
    watcher: Watcher
    customer: accounts.CustomerAccount
    address: str

    def mine(self, blocks: int = 1, to: str = FAUCET.text) -> list[str]:
        return self.node.rpc().generate(blocks, to)

    def deposits(self) -> list[records.Deposit]:
        with self.db.transaction() as conn:
            return records.for_account(conn, self.customer.id)

    def usd(self) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, self.customer.ledger_account_id).posted

    def events(self, deposit_id: uuid.UUID) -> list[str]:
        """The deposit's events in order (issue 15: one per change of status)."""
        with self.db.transaction() as conn:
            return outbox.types_of(conn, "deposit", deposit_id)


@pytest.fixture
def world(db: Database, bitcoin_node: BitcoinNode) -> Iterator[World]:
    with BtcRpc(bitcoin_node.url, bitcoin_node.api_key) as rpc:
        scanner = BtcScanner(rpc, NET, confirmations=2)
        head = scanner.head()
        # The rate lock looks the rate up at the block time: price on the chain's clock.
        clock = ManualClock(scanner.block(head.height, frozenset()).time)
        pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
        pricing.refresh()  # the default static rates: BTC at 60 000 USD
        with db.transaction() as conn:
            customer = accounts.create(conn, external_id="btc-user", now=clock.now(), request=None)
            address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(KEY), clock.now())
        watcher = Watcher(
            db, clock, scanner, pricing, WatcherConfig(Chain.BTC, start_height=head.height)
        )
        yield World(db, bitcoin_node, scanner, watcher, customer, address.address)


def test_a_btc_deposit_is_credited_once_final(world: World) -> None:
    assert world.watcher.tick().recorded == 0  # earlier payments to this address are history
    tx = faucet_pays(world.node, world.address, 100_000)
    [block_hash] = world.mine()

    report = world.watcher.tick()
    assert (report.recorded, report.credited) == (1, [])
    [seen] = world.deposits()
    assert seen.status is DepositStatus.CONFIRMING and seen.confirmations == 1
    assert (seen.txid, seen.position, seen.amount) == (tx.txid, 0, 100_000)
    assert (seen.sender, seen.sender_kind) == (FAUCET.text, SenderKind.KNOWN)
    assert seen.block_hash == block_hash
    assert seen.first_seen_at == world.scanner.block(world.scanner.head().height, frozenset()).time
    assert world.events(seen.id) == ["deposit.seen", "deposit.confirming"]

    world.mine()
    report = world.watcher.tick()
    [credited] = world.deposits()
    assert report.credited == [credited.id]
    assert credited.status is DepositStatus.CREDITED and credited.confirmations == 2
    assert credited.usd_amount == Money.parse("60", USD).amount  # 0.001 BTC at 60 000
    assert world.usd() == Money.parse("60", USD)
    assert world.events(seen.id)[2:] == ["deposit.credited"]

    world.mine()
    assert world.watcher.tick().credited == []
    assert world.usd() == Money.parse("60", USD)


def test_a_reorg_reverses_the_credit_and_reinclusion_credits_once(world: World) -> None:
    tx = faucet_pays(world.node, world.address, 250_000)
    [paid_in, _] = world.mine(2)
    world.watcher.tick()
    [credited] = world.deposits()
    assert credited.status is DepositStatus.CREDITED
    assert world.usd() == Money.parse("150", USD)

    # The block with the payment leaves the chain; a longer branch without it wins.
    world.node.rpc().call("invalidateblock", paid_in)
    other = p2wpkh_address_for_key(coincurve.PrivateKey(), NET).text
    world.mine(3, to=other)
    report = world.watcher.tick()
    assert report.rewound_to is not None
    [reversed_] = world.deposits()
    assert reversed_.status is DepositStatus.REVERSED
    assert reversed_.reversal_transaction_id is not None
    assert world.usd() == Money(0, USD)
    assert world.events(credited.id)[-2:] == ["deposit.credited", "deposit.reversed"]

    # bcoin dropped the transaction from its mempool on invalidateblock: broadcast it again.
    assert world.node.rpc().send_raw_transaction(tx.serialize()) == tx.txid
    [included, _] = world.mine(2)
    world.watcher.tick()
    [again] = world.deposits()
    assert again.status is DepositStatus.CREDITED and again.block_hash == included
    assert again.credit_count == 2 and again.rate_lock_id == credited.rate_lock_id
    assert world.usd() == Money.parse("150", USD)  # one credit in the end, at the first rate
    assert world.events(credited.id)[-3:] == [
        "deposit.reversed",
        "deposit.seen",
        "deposit.credited",
    ]
    world.mine()
    world.watcher.tick()
    assert world.usd() == Money.parse("150", USD)
