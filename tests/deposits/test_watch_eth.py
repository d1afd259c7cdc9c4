"""The deposit watcher end to end on Ethereum: ganache, `EthScanner`, both databases.

One watch-only BIP44 deposit address receives native ETH and USDT-ERC20 through real signed
transactions; the watcher scans from the tip it found at the start (the node is shared by the
whole session), waits for 2 confirmations (`EthFinality.CONFIRMATIONS`: ganache calls every
block finalized) and credits each at the block-time rate. A reorg made with ``evm_snapshot`` /
``evm_revert`` reverses a credited deposit; the same signed transaction sent again is credited
once more, so the customer ends with one credit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from hexbytes import HexBytes
from web3 import Web3

from kassa.accounts import service as accounts
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.eth.scanner import EthFinality, EthScanner
from kassa.chains.hd import parse_account_key
from kassa.chains.network import Chain, EthNetwork
from kassa.chains.scanning import NATIVE_POSITION, SenderKind
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.deposits import addresses, records
from kassa.deposits.derive import HdDeriver
from kassa.deposits.model import DepositStatus
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.events import outbox
from kassa.ledger.accounts import get_balance
from kassa.money import ETH, USD, USDT_ERC20, Money
from kassa.pricing.service import PricingService
from kassa.pricing.settings import PricingSettings
from kassa_dev.devkeys import dev_account_xpub
from kassa_dev.devnet import ganache
from kassa_dev.devnet.testing import GanacheNode

NET = EthNetwork(ganache.CHAIN_ID)
MNEMONIC = "abandon " * 11 + "about"
KEY = parse_account_key(dev_account_xpub(MNEMONIC, NET), NET)
PAYER = ganache.dev_account(0)


@dataclass
class World:
    db: Database
    node: GanacheNode
    w3: Web3
    scanner: EthScanner
    watcher: Watcher
    customer: accounts.CustomerAccount
    address: str

    def rpc(self, method: str, *params: object) -> Any:
        return self.w3.provider.make_request(cast(Any, method), list(params))["result"]

    def mine(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")

    def by_asset(self) -> dict[str, records.Deposit]:
        with self.db.transaction() as conn:
            return {d.asset: d for d in records.for_account(conn, self.customer.id)}

    def usd(self) -> Money:
        with self.db.transaction() as conn:
            return get_balance(conn, self.customer.ledger_account_id).posted

    def events(self, deposit_id: uuid.UUID) -> list[str]:
        """The deposit's events in order (issue 15: one per change of status)."""
        with self.db.transaction() as conn:
            return outbox.types_of(conn, "deposit", deposit_id)


@pytest.fixture
def world(db: Database, ganache_node: GanacheNode) -> Iterator[World]:
    with EthRpc(ganache_node.url) as rpc:
        scanner = EthScanner(
            rpc,
            usdt_contract=ganache_node.usdt_address,
            confirmations=2,
            finality=EthFinality.CONFIRMATIONS,
        )
        head = scanner.head()
        # The rate lock looks the rate up at the block time: price on the chain's clock.
        clock = ManualClock(scanner.block(head.height, frozenset()).time)
        pricing = PricingService(db, clock, PricingSettings(history_tolerance_seconds=3600))
        pricing.refresh()  # the default static rates: ETH at 3000 USD, USDT at par
        with db.transaction() as conn:
            customer = accounts.create(conn, external_id="eth-user", now=clock.now(), request=None)
            address, _ = addresses.get_or_create(conn, customer.id, HdDeriver(KEY), clock.now())
        watcher = Watcher(
            db, clock, scanner, pricing, WatcherConfig(Chain.ETH, start_height=head.height)
        )
        w3 = ganache_node.web3()
        yield World(db, ganache_node, w3, scanner, watcher, customer, address.address)


def test_native_eth_and_usdt_on_one_address_are_credited_once_final(world: World) -> None:
    faucet = world.node.faucet()
    eth_txid = faucet.fund(world.address, Money.parse("0.01", ETH))
    usdt_txid = faucet.fund(world.address, Money.parse("25.5", USDT_ERC20))

    # Instamine: one block each. The ETH block has 2 confirmations, the USDT block 1.
    world.watcher.tick()
    found = world.by_asset()
    eth, usdt = found["ETH"], found["USDT-ERC20"]
    assert (eth.txid, eth.position, eth.amount) == (eth_txid, NATIVE_POSITION, 10**16)
    assert (usdt.txid, usdt.position, usdt.amount) == (usdt_txid, 0, 25_500_000)
    assert usdt.token_contract == world.node.usdt_address
    assert {d.sender for d in found.values()} == {PAYER.address}
    assert {d.sender_kind for d in found.values()} == {SenderKind.KNOWN}
    assert eth.status is DepositStatus.CREDITED
    assert usdt.status is DepositStatus.CONFIRMING and usdt.confirmations == 1
    assert world.usd() == Money.parse("30", USD)  # 0.01 ETH at 3000

    world.mine()
    world.watcher.tick()
    found = world.by_asset()
    assert {a: d.status for a, d in found.items()} == {
        "ETH": DepositStatus.CREDITED,
        "USDT-ERC20": DepositStatus.CREDITED,
    }
    assert found["USDT-ERC20"].usd_amount == Money.parse("25.5", USD).amount
    assert world.usd() == Money.parse("55.5", USD)
    assert world.events(eth.id) == ["deposit.seen", "deposit.credited"]
    assert world.events(usdt.id) == ["deposit.seen", "deposit.confirming", "deposit.credited"]

    world.mine(2)
    assert world.watcher.tick().credited == []
    assert world.usd() == Money.parse("55.5", USD)


def test_a_reorg_reverses_the_credit_and_reinclusion_credits_once(world: World) -> None:
    payer = ganache.dev_account(7)
    base_fee = int(world.w3.eth.get_block("latest").get("baseFeePerGas", 0))
    raw = payer.sign_transaction(
        {
            "chainId": ganache.CHAIN_ID,
            "nonce": world.w3.eth.get_transaction_count(payer.address, "pending"),
            "to": Web3.to_checksum_address(world.address),
            "value": Money.parse("0.02", ETH).amount,
            "gas": 21_000,
            "maxPriorityFeePerGas": 10**9,
            "maxFeePerGas": 2 * base_fee + 10**9,
            "type": 2,
        }
    ).raw_transaction
    snapshot = world.rpc("evm_snapshot")
    tx_hash = world.w3.eth.send_raw_transaction(raw)
    world.mine()
    world.watcher.tick()
    credited = world.by_asset()["ETH"]
    assert credited.status is DepositStatus.CREDITED and credited.sender == payer.address
    assert world.usd() == Money.parse("60", USD)

    # Back to before the payment; the competing branch is longer and does not have it.
    assert world.rpc("evm_revert", snapshot) is True
    world.mine(3)
    report = world.watcher.tick()
    assert report.rewound_to is not None
    reversed_ = world.by_asset()["ETH"]
    assert reversed_.status is DepositStatus.REVERSED
    assert world.usd() == Money(0, USD)
    assert world.events(credited.id)[-2:] == ["deposit.credited", "deposit.reversed"]

    # The same signed transaction (same nonce) is mined again.
    assert world.w3.eth.send_raw_transaction(raw) == tx_hash
    receipt = world.w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=20)
    world.mine()
    world.watcher.tick()
    again = world.by_asset()["ETH"]
    assert again.status is DepositStatus.CREDITED
    assert again.block_hash == receipt["blockHash"].to_0x_hex()
    assert again.credit_count == 2 and again.rate_lock_id == credited.rate_lock_id
    assert world.usd() == Money.parse("60", USD)  # one credit in the end
    assert world.events(credited.id)[-3:] == [
        "deposit.reversed",
        "deposit.seen",
        "deposit.credited",
    ]
    world.mine()
    world.watcher.tick()
    assert world.usd() == Money.parse("60", USD)
