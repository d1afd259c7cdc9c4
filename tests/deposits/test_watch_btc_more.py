"""More of the Bitcoin watcher on bcoin regtest: what it ignores and how it splits transactions.

docs/domain.md §4: a transfer is keyed by ``(chain, txid, vout)`` because one transaction can carry
several transfers; dust below the chain's threshold is ``ignored`` with its reason and never
credited. Real signed faucet transactions, the real `BtcScanner`, both databases; the watcher
starts at the tip it finds (the node is shared by the session) and uses the dust threshold of
the default settings, as `kassa watch` would.
"""

from __future__ import annotations

import collections
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import coincurve
import pytest
from sqlalchemy import select

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
from kassa.chains.network import BtcNetwork, Chain
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
from kassa.money import USD, Money
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devnet import bitcoin as devbtc
from kassa_dev.devnet.testing import BitcoinNode

NET = BtcNetwork.REGTEST
SETTINGS = ChainsSettings()
"""The defaults `kassa watch` runs with on regtest: dev key, dust 0.00000546 BTC."""
FAUCET_KEY = coincurve.PrivateKey(devbtc.faucet_key().private_key)
FAUCET = p2wpkh_address_for_key(FAUCET_KEY, NET)
ELSEWHERE = p2wpkh_address_for_key(coincurve.PrivateKey(), NET).text
MICRO_USD_PER_SAT = 600
"""BTC at the static 60 000 USD."""


def faucet_pays(node: BitcoinNode, outputs: list[tuple[str, int]]) -> Transaction:
    """Test helper: one signed faucet transaction with `outputs` (address, satoshi) as vouts
    0…n-1 in order and the change last, broadcast."""
    rpc = node.rpc()
    tip = rpc.height()
    needed = sum(amount for _, amount in outputs) + 100_000
    utxo = min(
        (c for c in rpc.utxos(FAUCET.text) if c.spendable_at(tip) and c.value > needed),
        key=lambda c: c.height,
    )
    scripts = [parse_btc_address(address, NET).script_pubkey for address, _ in outputs]
    fee = fee_for_vsize(estimate_vsize(1, [*scripts, FAUCET.script_pubkey]), 2_000)
    change = utxo.value - sum(amount for _, amount in outputs) - fee
    signed = build_transaction(
        [Coin(OutPoint(utxo.txid, utxo.vout), utxo.value, utxo.script_pubkey)],
        [
            *(TxOut(amount, script) for (_, amount), script in zip(outputs, scripts, strict=True)),
            TxOut(change, FAUCET.script_pubkey),
        ],
    ).sign([FAUCET_KEY])
    assert rpc.send_raw_transaction(signed.serialize()) == signed.txid
    return signed


@dataclass
class World:
    db: Database
    node: BitcoinNode
    watcher: Watcher
    alice: accounts.CustomerAccount
    alice_address: str
    bob: accounts.CustomerAccount
    bob_address: str

    def mine(self, blocks: int = 1) -> list[str]:
        return self.node.rpc().generate(blocks, ELSEWHERE)

    def deposits(self, customer: accounts.CustomerAccount) -> list[records.Deposit]:
        with self.db.transaction() as conn:
            return records.for_account(conn, customer.id)

    def usd(self, customer: accounts.CustomerAccount) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, customer.ledger_account_id).posted

    def ledger_deposits(self) -> collections.Counter[uuid.UUID]:
        """Ledger deposit transactions per deposit id."""
        with self.db.transaction() as conn:
            rows = conn.execute(
                select(ledger_transaction.c.metadata_json).where(
                    ledger_transaction.c.kind == TransactionKind.DEPOSIT.value
                )
            ).all()
        return collections.Counter(uuid.UUID(json.loads(r[0])["deposit_id"]) for r in rows)


@pytest.fixture
def world(db: Database, bitcoin_node: BitcoinNode) -> Iterator[World]:
    with BtcRpc(bitcoin_node.url, bitcoin_node.api_key) as rpc:
        scanner = BtcScanner(rpc, NET, confirmations=SETTINGS.btc.confirmations)
        head = scanner.head()
        # The rate lock looks the rate up at the block time: price on the chain's clock.
        clock = ManualClock(scanner.block(head.height, frozenset()).time)
        pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
        pricing.refresh()
        deriver = derivers(SETTINGS)[Chain.BTC]
        with db.transaction() as conn:
            alice = accounts.create(conn, external_id="alice", now=clock.now(), request=None)
            bob = accounts.create(conn, external_id="bob", now=clock.now(), request=None)
            alice_address, _ = addresses.get_or_create(conn, alice.id, deriver, clock.now())
            bob_address, _ = addresses.get_or_create(conn, bob.id, deriver, clock.now())
        config = WatcherConfig(
            Chain.BTC,
            dust=dust_thresholds(SETTINGS, Chain.BTC),
            start_height=head.height + 1,
        )
        watcher = Watcher(db, clock, scanner, pricing, config)
        yield World(
            db,
            bitcoin_node,
            watcher,
            alice,
            alice_address.address,
            bob,
            bob_address.address,
        )


def test_one_transaction_paying_two_customers_makes_one_deposit_per_output_each_credited(
    world: World,
) -> None:
    # vout 0 and 2 pay Alice's address, vout 1 Bob's, vout 3 is the faucet's change.
    tx = faucet_pays(
        world.node,
        [(world.alice_address, 30_000), (world.bob_address, 45_000), (world.alice_address, 20_000)],
    )
    [block_hash] = world.mine()
    report = world.watcher.tick()

    alice = {d.position: d for d in world.deposits(world.alice)}
    bob = {d.position: d for d in world.deposits(world.bob)}
    assert report.recorded == 3
    assert sorted(report.credited) == sorted(d.id for d in [*alice.values(), *bob.values()])
    assert {p: d.amount for p, d in alice.items()} == {0: 30_000, 2: 20_000}
    assert {p: d.amount for p, d in bob.items()} == {1: 45_000}
    for d in [*alice.values(), *bob.values()]:
        assert d.txid == tx.txid and d.block_hash == block_hash
        assert d.status is DepositStatus.CREDITED and d.credit_count == 1
        assert (d.sender, d.sender_kind) == (FAUCET.text, SenderKind.KNOWN)
        assert d.usd_amount == d.amount * MICRO_USD_PER_SAT
    # Each output valued and credited on its own: one rate lock and one ledger entry each.
    every = [*alice.values(), *bob.values()]
    assert len({d.rate_lock_id for d in every}) == 3
    assert world.ledger_deposits() == collections.Counter({d.id: 1 for d in every})
    assert world.usd(world.alice) == Money(50_000 * MICRO_USD_PER_SAT, USD)  # 30.00 USD
    assert world.usd(world.bob) == Money(45_000 * MICRO_USD_PER_SAT, USD)  # 27.00 USD

    world.mine()
    again = world.watcher.tick()
    assert (again.recorded, again.credited) == (0, [])
    assert world.usd(world.alice) == Money.parse("30", USD)
    assert world.usd(world.bob) == Money.parse("27", USD)


def test_a_dust_output_is_recorded_ignored_with_its_reason_and_never_credited(
    world: World,
) -> None:
    # 400 sat: relayed by the node (a P2WPKH output's relay dust limit is 294 sat) but under
    # Kassa's 546 sat threshold. The same transaction also pays Bob a normal amount.
    assert world.watcher.config.dust == {"BTC": 546}
    tx = faucet_pays(world.node, [(world.alice_address, 400), (world.bob_address, 50_000)])
    world.mine()
    world.watcher.tick()

    [dust] = world.deposits(world.alice)
    [paid] = world.deposits(world.bob)
    assert (dust.txid, dust.position, dust.amount) == (tx.txid, 0, 400)
    assert dust.status is DepositStatus.IGNORED
    assert dust.status_reason == "below the dust threshold of 0.00000546 BTC"
    assert dust.rate_lock_id is None and dust.credit_transaction_id is None
    assert paid.status is DepositStatus.CREDITED

    world.mine(3)
    world.watcher.tick()
    [still] = world.deposits(world.alice)
    assert still.status is DepositStatus.IGNORED and still.credit_count == 0
    assert world.usd(world.alice) == Money(0, USD)
    assert world.ledger_deposits() == collections.Counter({paid.id: 1})
    with world.db.transaction() as conn:
        history = records.events(conn, dust.id)
    assert history == [(None, "ignored", "below the dust threshold of 0.00000546 BTC")]


def test_the_credit_log_line_states_the_usd_value_in_dollars(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Operators read this line; 100 000 sat at 60 000 USD is 60.00 USD, not "$60000000"
    # (the micro-USD integer).
    tx = faucet_pays(world.node, [(world.alice_address, 100_000)])
    world.mine()
    with caplog.at_level(logging.INFO, logger="kassa.deposits.watcher"):
        world.watcher.tick()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("credited")]
    assert line == f"credited BTC deposit {tx.txid}:0 (0.001) for $60.00"
