"""Reconciliation (`kassa.reports.reconciliation`) on the real local chains — ganache, bcoin
regtest and the TRON simulator, read through Kassa's chain adapters — on PostgreSQL.

One history: a customer tops up on the three chains (credited by the real watcher), spends
(usage, an activation), has a top-up refunded (TRON) and makes two withdrawals (ETH, BTC), paid
by the real payout worker; the hot wallets' funding is booked. That devnet reconciles with zero
breaks and coverage ≥ 1. Then four faults are injected at once, and each is found exactly once
with its class: a credit removed by direct SQL, a deposit the watcher never saw (paid while it
was stopped, its checkpoint then moved past it), coins sent out of the ETH hot wallet outside
Kassa, a confirmed payout whose transaction is not on chain. Fixing each cause resolves its
break on the next run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Connection, delete, insert, select, update
from web3 import Web3

from kassa.accounts.service import CustomerAccount
from kassa.chains.network import BtcNetwork, Chain, EthNetwork, TronNetwork
from kassa.db import Database
from kassa.deposits import records
from kassa.deposits.model import DepositStatus
from kassa.deposits.runtime import build_scanner, dust_thresholds
from kassa.deposits.settings import DEV_MNEMONIC
from kassa.deposits.tables import watcher_checkpoint
from kassa.deposits.watcher import Watcher, WatcherConfig
from kassa.ledger.idempotency import IdempotencyKey, Request
from kassa.ledger.tables import ledger_account, ledger_posting, ledger_transaction
from kassa.money import ETH, USD, Money, asset
from kassa.payouts.model import RequestStatus
from kassa.payouts.tables import payout_tx
from kassa.reports.reconciliation.chain_reader import build_reader
from kassa.reports.reconciliation.funding import book_hot_funding
from kassa.reports.reconciliation.model import BreakClass, Outcome
from kassa.reports.reconciliation.run import Reconciler
from kassa.spending import activations
from kassa.spending.usage import UsageEvent, record_usage
from kassa_dev.bench._payouts_run import close_client
from kassa_dev.devkeys import dev_account_xpub
from kassa_dev.devnet.testing import BitcoinNode, GanacheNode, TronNode

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory
    from tests.payouts.conftest import Stage

pytestmark = pytest.mark.slow

STAGE_FUNDING = {
    Chain.BTC: {"BTC": "2"},
    Chain.ETH: {"ETH": "10", "USDT-ERC20": "10000"},
    Chain.TRON: {"TRX": "10000", "USDT-TRC20": "10000"},
}
"""What `make_stage` funds the hot wallets with from the faucet (tests/payouts/conftest.py)."""


def _fresh_addresses(stage: Stage) -> None:
    """Deposit addresses of an account key nobody else derives from: the session's chains are
    shared, and the devnet key's addresses were paid by other tests."""
    account = 1000 + uuid.uuid4().int % 1_000_000
    network: dict[Chain, BtcNetwork | EthNetwork | TronNetwork] = {
        Chain.BTC: BtcNetwork.REGTEST,
        Chain.ETH: EthNetwork(1337),
        Chain.TRON: TronNetwork.DEVNET,
    }
    xpub = dev_account_xpub(DEV_MNEMONIC, network[stage.chain], account=account)
    settings = stage.chains.of(stage.chain).model_copy(update={"account_xpub": xpub})
    stage.chains = stage.chains.model_copy(update={stage.chain.value: settings})


def _book_funding(stage: Stage) -> None:
    """Book the stage's hot-wallet funding, as an operator does (`kassa reconcile fund-hot`)."""
    with stage.db.transaction() as conn:
        for code, text in STAGE_FUNDING[stage.chain].items():
            book_hot_funding(
                conn,
                Money.parse(text, asset(code)),
                reference=f"stage-funding-{code}",
                actor="test",
                now=stage.clock.now(conn),
            )


def _watch_until_credited(stage: Stage, account: CustomerAccount, count: int) -> None:
    """Tick the chain's watcher (from its checkpoint) until `count` deposits are credited."""
    scanner = build_scanner(stage.chains, stage.chain)
    watcher = Watcher(
        stage.db,
        stage.clock,
        scanner,
        stage.pricing,
        WatcherConfig(stage.chain, dust=dust_thresholds(stage.chains, stage.chain)),
    )
    try:
        for _ in range(40):
            stage.mine(1)
            watcher.tick()
            with stage.db.transaction() as conn:
                credited = [
                    d
                    for d in records.for_account(conn, account.id)
                    if d.chain is stage.chain and d.status is DepositStatus.CREDITED
                ]
            if len(credited) >= count:
                return
    finally:
        close_client(scanner)
    raise AssertionError("the deposit was not credited")


@contextmanager
def _triggers_off(conn: Connection) -> Iterator[None]:
    conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
    yield
    conn.exec_driver_sql("SET LOCAL session_replication_role = origin")


def _shift_sums(conn: Connection, postings: Sequence[Any], sign: int) -> None:
    for posting in postings:
        amount = int(posting.amount)
        column = "debits_posted" if amount > 0 else "credits_posted"
        stored = conn.execute(
            select(ledger_account.c[column]).where(ledger_account.c.id == posting.account_id)
        ).scalar_one()
        conn.execute(
            update(ledger_account)
            .where(ledger_account.c.id == posting.account_id)
            .values({column: int(stored) + sign * abs(amount)})
        )


def _classes(outcome: Outcome) -> list[tuple[str, str | None, str | None]]:
    return sorted(
        (b["class"], b["chain"], b["asset"]) for b in outcome.open_breaks if b["status"] == "new"
    )


def _request(name: str) -> Request:
    return Request.of(IdempotencyKey("test", uuid.uuid4().hex), name, {})


def test_a_clean_devnet_reconciles_and_each_injected_fault_is_one_break_until_fixed(
    pg_databases: DatabaseFactory,
    make_stage: Callable[..., Stage],
    bitcoin_node: BitcoinNode,
    ganache_node: GanacheNode,
    tron_sim: TronNode,
) -> None:
    db: Database = pg_databases.new()
    btc = make_stage(db, Chain.BTC, bitcoin_node)
    eth = make_stage(db, Chain.ETH, ganache_node)
    tron = make_stage(db, Chain.TRON, tron_sim)
    for stage in (btc, eth, tron):
        _fresh_addresses(stage)
    for stage in (btc, eth, tron):
        _book_funding(stage)

    # -- a clean history on three chains -------------------------------------------------------
    customer = btc.customer(None)
    btc.top_up(customer, Money.parse("0.001", asset("BTC")))  # $60
    eth_deposit = eth.top_up(customer, Money.parse("0.001", ETH))  # $3
    trx_deposit = tron.top_up(customer, Money.parse("240", asset("TRX")))  # $60
    with db.transaction() as conn:
        now = btc.clock.now(conn)
        record_usage(
            conn,
            customer,
            [UsageEvent("req-1", Money.parse("0.25", USD), "API call")],
            now=now,
            request=None,
        )
        reserved = activations.reserve(
            conn, customer, price=Money.parse("1.50", USD), now=now, request=None
        )
        activations.fulfil(conn, customer, reserved.id, now=now, request=None)
    refund = tron.refund(customer, trx_deposit)
    tron.pay(tron.worker(), refund.id)
    withdrawal = eth.withdraw(customer, "25.00", "ETH", eth.fresh_address())
    eth.pay(eth.worker(), withdrawal.id)
    btc_withdrawal = btc.withdraw(customer, "20.00", "BTC", btc.fresh_address())
    btc.pay(btc.worker(), btc_withdrawal.id)
    btc.mine(1)
    assert tron.status(refund.id) is RequestStatus.CONFIRMED
    assert eth.status(withdrawal.id) is RequestStatus.CONFIRMED

    readers = {s.chain: build_reader(s.chains, s.chain) for s in (btc, eth, tron)}
    reconciler = Reconciler(
        db,
        btc.clock,
        readers,
        hot_addresses={Chain.ETH: eth.rail.hot_address(), Chain.TRON: tron.rail.hot_address()},
    )
    try:
        clean = reconciler.run()
        assert clean.open_breaks == [], clean.open_breaks
        solvency = clean.summary["solvency"]
        assert solvency["coverage"] is not None and Decimal(solvency["coverage"]) >= 1
        assert {c: v["confirmed_payouts"] for c, v in clean.summary["chains"].items()} == {
            "btc": 1,
            "eth": 1,
            "tron": 1,
        }
        # The BTC hot wallet's coins (read output by output) are counted next to the deposit.
        assert int(solvency["assets"]["BTC"]["coins"]) > 100_000 + 10**8
        assert clean.summary["checked"] == [
            "chains:btc",
            "chains:eth",
            "chains:tron",
            "ledger:*",
            "records:*",
            "solvency:*",
        ]

        # -- four faults -------------------------------------------------------------------------
        # 1. The ETH top-up's credit removed by direct SQL (and from the stored sums, so the
        #    books still balance: only the records show it).
        assert eth_deposit.credit_transaction_id is not None
        with db.transaction() as conn, _triggers_off(conn):
            removed_txn = conn.execute(
                select(ledger_transaction).where(
                    ledger_transaction.c.id == eth_deposit.credit_transaction_id
                )
            ).one()
            removed = conn.execute(
                select(ledger_posting).where(
                    ledger_posting.c.transaction_id == eth_deposit.credit_transaction_id
                )
            ).all()
            conn.execute(
                delete(ledger_posting).where(
                    ledger_posting.c.transaction_id == eth_deposit.credit_transaction_id
                )
            )
            conn.execute(
                delete(ledger_transaction).where(
                    ledger_transaction.c.id == eth_deposit.credit_transaction_id
                )
            )
            _shift_sums(conn, removed, -1)

        # 2. A deposit the watcher never saw: paid while no watcher runs, then its checkpoint
        #    moved past it.
        address = eth_deposit_address(db, customer)
        eth.faucet_fund(address, Money.parse("0.002", ETH))
        eth.mine(2)
        scanner = build_scanner(eth.chains, Chain.ETH)
        try:
            tip = scanner.head()
        finally:
            close_client(scanner)
        with db.transaction() as conn:
            checkpoint = conn.execute(
                select(watcher_checkpoint.c.height, watcher_checkpoint.c.block_hash).where(
                    watcher_checkpoint.c.chain == "eth"
                )
            ).one()
            conn.execute(
                update(watcher_checkpoint)
                .where(watcher_checkpoint.c.chain == "eth")
                .values(height=tip.height, block_hash=tip.hash)
            )

        # 3. Coins sent out of the ETH hot wallet outside Kassa (signed with its key directly).
        sent_out = _send_from_hot(eth, Web3.to_wei(Decimal("0.5"), "ether"))

        # 4. A confirmed payout whose transaction is not on chain: its record names another.
        with db.transaction() as conn:
            paid_by = conn.execute(
                select(payout_tx.c.id, payout_tx.c.txid).where(
                    payout_tx.c.chain == "tron", payout_tx.c.status == "confirmed"
                )
            ).one()
            conn.execute(
                update(payout_tx)
                .where(payout_tx.c.id == paid_by.id)
                .values(txid=uuid.uuid4().hex * 2)
            )

        faulty = reconciler.run()
        assert _classes(faulty) == [
            (BreakClass.DEPOSIT_CREDIT_MISMATCH, "eth", "USD"),
            (BreakClass.DEPOSIT_MISSED, "eth", "ETH"),
            (BreakClass.HOT_WALLET_MISMATCH, "eth", "ETH"),
            (BreakClass.PAYOUT_NOT_ON_CHAIN, "tron", "TRX"),
        ], faulty.open_breaks
        by_class = {b["class"]: b for b in faulty.open_breaks}
        assert by_class["deposit_credit_mismatch"]["object_id"] == str(eth_deposit.id)
        assert by_class["deposit_credit_mismatch"]["difference"] == "-3000000"
        assert by_class["deposit_missed"]["object_id"] == address
        assert by_class["deposit_missed"]["difference"] == str(2 * 10**15)
        assert by_class["hot_wallet_mismatch"]["difference"] == str(-sent_out)
        assert by_class["payout_not_on_chain"]["object_id"] == str(refund.id)
        assert (faulty.new, faulty.resolved) == (4, 0)

        # -- each cause fixed --------------------------------------------------------------------
        with db.transaction() as conn, _triggers_off(conn):
            conn.execute(insert(ledger_transaction).values(**removed_txn._mapping))
            for posting in removed:
                conn.execute(insert(ledger_posting).values(**posting._mapping))
            _shift_sums(conn, removed, +1)
            conn.execute(
                update(watcher_checkpoint)
                .where(watcher_checkpoint.c.chain == "eth")
                .values(
                    height=checkpoint.height,
                    block_hash=checkpoint.block_hash,
                    lease_owner=None,  # the stopped watcher's lease
                    lease_until=None,
                )
            )
            conn.execute(
                update(payout_tx).where(payout_tx.c.id == paid_by.id).values(txid=paid_by.txid)
            )
            book_hot_funding(
                conn,
                Money(-sent_out, ETH),
                reference="sent-out-by-hand",
                actor="test",
                now=eth.clock.now(conn),
            )
        _watch_until_credited(eth, customer, 2)  # the watcher now finds the missed deposit

        fixed = reconciler.run()
        assert fixed.open_breaks == [], fixed.open_breaks
        assert (fixed.new, fixed.persisting, fixed.resolved) == (0, 0, 4)
    finally:
        reconciler.close()


def eth_deposit_address(db: Database, customer: CustomerAccount) -> str:
    from kassa.deposits.tables import deposit_address

    with db.transaction() as conn:
        found: str = conn.execute(
            select(deposit_address.c.address).where(
                deposit_address.c.customer_account_id == customer.id,
                deposit_address.c.chain == "eth",
            )
        ).scalar_one()
    return found


def _send_from_hot(stage: Stage, wei: int) -> int:
    """Send `wei` from the ETH hot wallet to a fresh address with its key, outside Kassa; the
    wei that left it (value and gas)."""
    web3 = Web3(Web3.HTTPProvider(stage.node.url))
    sender = Web3.to_checksum_address(stage.rail.hot_address())
    tx = {
        "to": Web3.to_checksum_address(stage.fresh_address()),
        "value": wei,
        "gas": 21_000,
        "gasPrice": web3.eth.gas_price,
        "nonce": web3.eth.get_transaction_count(sender),
        "chainId": web3.eth.chain_id,
    }
    signed = web3.eth.account.sign_transaction(tx, stage.key.secret)
    txid = web3.eth.send_raw_transaction(signed.raw_transaction)
    stage.mine(2)
    receipt = web3.eth.wait_for_transaction_receipt(txid)
    return wei + int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
