"""More of the TRON watcher on Kassa's java-tron simulator: a reorganisation before the credit,
and a reverted USDT transfer.

TRON's finality is the solidified block (docs/domain.md §4), and the simulator — like java-tron —
can only drop blocks above it (``POST /debug/rollback``). So the reorg a TRON watcher must
survive is the one *before* the credit: the deposit is seen and confirming, its block is rolled
back, the watcher moves it back to ``seen``; the rollback returns the transaction to the pool,
it is mined again in another block and credited exactly once. Once credited (solidified), the
block can no longer be rolled back at all.

A TRC-20 ``transfer`` that reverts (the payer holds no USDT) is still included and charged on
TRON; the watcher records it as ``ignored`` (failed) and never credits it.

The simulator makes a block every 0.5 s and is shared by the session: the watcher starts at the
tip it finds, and no block number is assumed.
"""

from __future__ import annotations

import collections
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import coincurve
import httpx
import pytest
from sqlalchemy import select

from kassa.accounts import service as accounts
from kassa.chains.network import Chain
from kassa.chains.tron.address import parse_tron_address
from kassa.chains.tron.api import TronApi
from kassa.chains.tron.scanner import TronScanner
from kassa.chains.tron.tx import sign_trc20_transfer, tron_address_for_key
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
from kassa.money import TRX, USD, USDT_TRC20, Money
from kassa.pricing.model import Symbol
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devnet import tron_node
from kassa_dev.devnet.testing import TronNode

SETTINGS = ChainsSettings()
SOLIDIFY = 20
"""Blocks to mine so that everything before is solidified (the simulator's lag is 19)."""


@dataclass
class World:
    db: Database
    node: TronNode
    scanner: TronScanner
    clock: ManualClock
    watcher: Watcher
    customer: accounts.CustomerAccount
    address: str

    def solidify(self) -> None:
        """Mine until every block so far is solidified; Kassa's clock follows the chain's."""
        tron_node.mine(self.node.url, SOLIDIFY)
        head = self.scanner.head()
        self.clock.set(max(self.clock.now(), self.scanner.block(head.height, frozenset()).time))

    def rollback(self, to: int) -> httpx.Response:
        return httpx.post(f"{self.node.url}/debug/rollback", json={"to": to}, timeout=10)

    def deposits(self) -> list[records.Deposit]:
        with self.db.transaction() as conn:
            return records.for_account(conn, self.customer.id)

    def usd(self) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, self.customer.ledger_account_id).posted

    def events(self, deposit_id: uuid.UUID) -> list[tuple[str | None, str, str | None]]:
        with self.db.transaction() as conn:
            return records.events(conn, deposit_id)

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
def world(db: Database, tron_sim: TronNode) -> Iterator[World]:
    with TronApi(tron_sim.url) as api:
        scanner = TronScanner(api, usdt_contract=tron_sim.usdt_contract)
        tip = scanner.head().height
        # Kassa's clock starts at chain time (`/debug/mine` may have moved the chain ahead).
        clock = ManualClock(scanner.block(tip, frozenset()).time)
        pricing = PricingService(db, clock, PricingSettings())
        pricing.refresh([Symbol.TRX, Symbol.USDT])
        with db.transaction() as conn:
            customer = accounts.create(conn, external_id="tron-more", now=clock.now(), request=None)
            address, _ = addresses.get_or_create(
                conn, customer.id, derivers(SETTINGS)[Chain.TRON], clock.now()
            )
        config = WatcherConfig(
            Chain.TRON, dust=dust_thresholds(SETTINGS, Chain.TRON), start_height=tip + 1
        )
        watcher = Watcher(db, clock, scanner, pricing, config)
        yield World(db, tron_sim, scanner, clock, watcher, customer, address.address)


def test_a_reorg_before_the_credit_sends_the_deposit_back_to_seen_and_reinclusion_credits_once(
    world: World,
) -> None:
    txid = world.node.faucet().fund(world.address, Money.parse("7", USDT_TRC20))
    world.watcher.tick()
    [confirming] = world.deposits()
    assert confirming.txid == txid and confirming.status is DepositStatus.CONFIRMING
    assert confirming.block_height is not None
    mined_in = confirming.block_height

    # The payment's block (and any after it) leave the chain; the transaction goes back to the
    # pool and the next block — the timer's or ours — includes it again.
    rolled = world.rollback(mined_in - 1)
    assert rolled.status_code == 200, rolled.text
    assert txid in rolled.json()["returned_to_pool"]
    tron_node.mine(world.node.url, 1)
    report = world.watcher.tick()
    assert report.rewound_to == mined_in - 1

    left = f"block {mined_in} left the best chain (reorganisation above {mined_in - 1})"
    [again] = world.deposits()
    assert again.id == confirming.id and again.position == confirming.position
    assert again.block_hash is not None and again.block_hash != confirming.block_hash
    assert again.status is DepositStatus.CONFIRMING
    # Its statement: back to seen (not reversed: nothing was credited), then mined again.
    history = world.events(confirming.id)
    back = history.index(("confirming", "seen", left))
    assert history[back + 1] == ("seen", "seen", f"mined in block {again.block_height}")
    assert {to for _, to, _ in history} == {"seen", "confirming"}
    assert world.usd() == Money(0, USD)

    world.solidify()
    world.watcher.tick()
    [credited] = world.deposits()
    assert credited.status is DepositStatus.CREDITED
    assert credited.block_hash == again.block_hash and credited.credit_count == 1
    assert credited.first_seen_at == confirming.first_seen_at  # payment time: first inclusion
    assert credited.reversal_transaction_id is None
    assert world.usd() == Money.parse("7", USD)
    assert world.ledger_deposits() == collections.Counter({credited.id: 1})
    history = world.events(credited.id)
    assert [to for _, to, _ in history].count("credited") == 1
    assert "reversed" not in [to for _, to, _ in history]

    # Credited means solidified: the chain can no longer take that block back.
    assert credited.block_height is not None
    refused = world.rollback(credited.block_height - 1)
    assert refused.status_code == 409
    world.watcher.tick()
    [still] = world.deposits()
    assert still.status is DepositStatus.CREDITED and world.usd() == Money.parse("7", USD)


def test_a_reverted_trc20_transfer_to_the_address_is_ignored_as_failed(world: World) -> None:
    # A payer with TRX for the fee but no USDT: its `transfer` reverts, yet is mined.
    payer = coincurve.PrivateKey()
    payer_address = tron_address_for_key(payer)
    world.node.faucet().fund(payer_address.text, Money.parse("50", TRX))
    info = tron_node.debug_info(world.node.url)
    signed = sign_trc20_transfer(
        payer,
        token=parse_tron_address(world.node.usdt_contract),
        to=parse_tron_address(world.address),
        amount=Money.parse("5", USDT_TRC20).amount,
        fee_limit_sun=30_000_000,
        ref_block_id=info.solid_head_id,
        timestamp_ms=info.chain_time_ms,
    )
    answer = httpx.post(
        f"{world.node.url}/wallet/broadcasttransaction", json=signed.payload(), timeout=10
    ).json()
    assert answer.get("result") is True, answer
    tron_node.mine(world.node.url, 1)
    receipt = httpx.post(
        f"{world.node.url}/wallet/gettransactioninfobyid", json={"value": signed.txid}, timeout=10
    ).json()
    assert receipt["receipt"]["result"] == "REVERT"  # included, charged, failed

    world.watcher.tick()
    [failed] = world.deposits()
    assert (failed.txid, failed.position) == (signed.txid, 0)
    assert (failed.asset, failed.amount) == ("USDT-TRC20", 5_000_000)
    assert failed.sender == payer_address.text
    assert failed.status is DepositStatus.IGNORED
    assert failed.status_reason == "the transaction failed on chain"

    world.solidify()
    world.watcher.tick()
    [still] = world.deposits()
    assert still.status is DepositStatus.IGNORED and still.credit_count == 0
    assert still.rate_lock_id is None
    assert world.usd() == Money(0, USD)
    assert world.ledger_deposits() == collections.Counter()
    assert world.events(failed.id) == [(None, "ignored", "the transaction failed on chain")]
