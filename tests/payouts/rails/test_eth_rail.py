"""`EthRail` against the real ganache node (session fixture `ganache_node`, TestUSDT deployed).

Every test pays from a fresh random hot key, funded by the devnet faucet with real signed
transactions, and every payout is a transaction the rail signed and broadcast; balances,
receipts and nonces are checked on the node with web3, independently of the rail. Where the
rail allocates a nonce (``sign``) the test runs on SQLite and on PostgreSQL (`db`).

The node is shared by the whole session, so nothing assumes a height or a base fee; the one
test that stops ganache's miner starts it again in a ``finally``. ganache 7.9 treats a
transaction with nonce 0 as "fill in the next nonce" (it would execute the same bytes twice,
or keep two versions of nonce 0), so the replacement test replaces nonce 1, after a first
payout; the rail's broadcast guards against the rest (it never resends a transaction the node
already has).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

import coincurve
import pytest
from eth_account import Account
from eth_typing import HexStr
from sqlalchemy import Connection, insert, select, text
from web3 import Web3

from kassa.accounts.tables import customer_account
from kassa.chains.eth.address import checksum_encode, parse_eth_address
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.network import Chain, EthNetwork
from kassa.db import Database
from kassa.ledger.tables import ledger_account, ledger_hold
from kassa.money import ETH, USDT_ERC20, Asset, Money
from kassa.payouts.rails.base import (
    BroadcastOutcome,
    HotWalletShort,
    PayoutLine,
    RailUnavailable,
    SignedTx,
    StoredTx,
    TxState,
)
from kassa.payouts.rails.eth import EthRail
from kassa.payouts.settings import EthPayoutSettings
from kassa.payouts.signer import LocalKeySigner
from kassa.payouts.tables import payout_nonce, payout_request, payout_tx, payout_tx_line
from kassa.pricing.tables import rate_lock, rate_sample
from kassa_dev.devnet import ganache
from kassa_dev.devnet.testing import GanacheNode, free_port

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
MILLI_ETH = 10**15
GWEI = 10**9


class RailFactory(Protocol):
    def __call__(
        self,
        key: coincurve.PrivateKey,
        *,
        confirmations: int = 1,
        settings: EthPayoutSettings | None = None,
        url: str | None = None,
    ) -> EthRail: ...


@pytest.fixture
def eth_rails(ganache_node: GanacheNode) -> Iterator[RailFactory]:
    """Rails on the devnet, each with its own node connection (closed afterwards)."""
    clients: list[EthRpc] = []

    def make(
        key: coincurve.PrivateKey,
        *,
        confirmations: int = 1,
        settings: EthPayoutSettings | None = None,
        url: str | None = None,
    ) -> EthRail:
        rpc = EthRpc(url or ganache_node.url, timeout=10)
        clients.append(rpc)
        return EthRail(
            rpc,
            LocalKeySigner({Chain.ETH: key}),
            EthNetwork(ganache.CHAIN_ID),
            usdt_contract=parse_eth_address(ganache_node.usdt_address),
            settings=settings or EthPayoutSettings(),
            confirmations=confirmations,
            finality="confirmations",
        )

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def eth_w3(ganache_node: GanacheNode) -> Web3:
    return ganache_node.web3()


def new_key() -> coincurve.PrivateKey:
    return coincurve.PrivateKey(secrets.token_bytes(32))


def new_address() -> str:
    return checksum_encode(secrets.token_bytes(20))


def line(amount: Money, destination: str | None = None) -> PayoutLine:
    return PayoutLine(uuid.uuid4(), destination or new_address(), amount)


def stored(signed: SignedTx, lines: list[PayoutLine]) -> StoredTx:
    """The transaction as the worker stores it (its spend read back from JSON)."""
    return StoredTx(
        id=uuid.uuid4(),
        chain=Chain.ETH,
        txid=signed.txid,
        raw=signed.raw,
        spend_key=signed.spend_key,
        spend=json.loads(signed.spend_json()),
        fee=signed.fee,
        lines=tuple(lines),
        created_at=NOW,
        broadcast_at=None,
        expires_at=None,
    )


def sign(db: Database, rail: EthRail, coin: Asset, lines: list[PayoutLine]) -> StoredTx:
    estimate = rail.estimate(coin, lines)
    with db.transaction() as conn:
        signed = rail.sign(conn, coin, lines, estimate, now=NOW)
    return stored(signed, lines)


def mine(rail: EthRail, blocks: int = 1) -> None:
    for _ in range(blocks):
        rail.rpc.call("evm_mine")


def token_balance(w3: Web3, node: GanacheNode, holder: str) -> int:
    return ganache.erc20_balance(w3, node.usdt_address, holder)


def eth_balance(w3: Web3, address: str) -> int:
    return int(w3.eth.get_balance(Web3.to_checksum_address(address)))


def receipt_fee(w3: Web3, txid: str) -> int:
    receipt = w3.eth.get_transaction_receipt(HexStr(txid))
    return int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])


def base_fee(rail: EthRail, tag: str = "latest") -> int:
    block = rail.rpc.get_block(tag, full=False)
    assert block is not None
    return int(block["baseFeePerGas"], 16)


def send_with_key(rail: EthRail, key: coincurve.PrivateKey, nonce: int) -> str:
    """A transaction made with the hot key outside Kassa (1 wei to a random address)."""
    base = base_fee(rail)
    signed = Account.sign_transaction(
        {
            "type": 2,
            "chainId": ganache.CHAIN_ID,
            "nonce": nonce,
            "to": new_address(),
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 2 * base + GWEI,
            "maxPriorityFeePerGas": GWEI,
        },
        key.secret,
    )
    return rail.rpc.send_raw_transaction(bytes(signed.raw_transaction))


def next_nonce_row(db: Database, rail: EthRail) -> int:
    with db.transaction() as conn:
        value = conn.execute(
            select(payout_nonce.c.next_nonce).where(
                payout_nonce.c.chain == "eth",
                payout_nonce.c.address == rail.hot_address().lower(),
            )
        ).scalar_one()
    return int(value)


def store_as_worker(conn: Connection, tx: StoredTx, coin: Asset, status: str) -> None:
    """A ``payout_tx`` row with its line, as the worker stores a signed payout (with the
    customer account, rate lock, hold and request rows its line refers to)."""
    ledger_id = conn.execute(
        insert(ledger_account)
        .values(
            code=f"test:{uuid.uuid4()}",
            asset="USD",
            normal_side="credit",
            kind="user",
            allow_negative=False,
            debits_posted=0,
            credits_posted=0,
            debits_pending=0,
            credits_pending=0,
            created_at=NOW,
        )
        .returning(ledger_account.c.id)
    ).scalar_one()
    account_id = uuid.uuid4()
    conn.execute(
        insert(customer_account).values(
            id=account_id,
            external_id=str(account_id),
            ledger_account_id=ledger_id,
            status="active",
            created_at=NOW,
        )
    )
    price = Decimal("3000")
    sample_id = conn.execute(
        insert(rate_sample)
        .values(
            symbol="ETH",
            kind="live",
            sampled_at=NOW,
            market_bid=price,
            market_ask=price,
            bid=price,
            ask=price,
            spread_bps=0,
            pegged=False,
            depegged=False,
            accepted_count=1,
            recorded_at=NOW,
        )
        .returning(rate_sample.c.id)
    ).scalar_one()
    lock_id, hold_id = uuid.uuid4(), uuid.uuid4()
    conn.execute(
        insert(rate_lock).values(
            id=lock_id,
            purpose=f"test {lock_id}",
            asset=coin.code.value,
            symbol="ETH",
            side="ask",
            rate=price,
            priced_at=NOW,
            sample_id=sample_id,
            sources="[]",
            locked_at=NOW,
        )
    )
    conn.execute(
        insert(ledger_hold).values(
            id=hold_id,
            debit_account_id=ledger_id,
            credit_account_id=ledger_id,
            asset="USD",
            amount=1_000_000,
            status="pending",
            created_at=NOW,
        )
    )
    payout = tx.lines[0]
    conn.execute(
        insert(payout_request).values(
            id=payout.request_id,
            kind="withdrawal",
            customer_account_id=account_id,
            asset=coin.code.value,
            destination=payout.destination,
            status="signed",
            policy="default",
            gross_usd=1_000_000,
            fees_usd=0,
            network_fee_usd=0,
            net_usd=1_000_000,
            net_native=payout.amount.amount,
            rate_lock_id=lock_id,
            hold_id=hold_id,
            decision="{}",
            needs_review=False,
            requested_by="customer",
            actor="test",
            created_at=NOW,
            updated_at=NOW,
        )
    )
    conn.execute(
        insert(payout_tx).values(
            id=tx.id,
            chain="eth",
            asset=coin.code.value,
            txid=tx.txid,
            spend_key=tx.spend_key,
            raw=tx.raw,
            spend=json.dumps(dict(tx.spend)),
            fee_native=tx.fee.amount,
            fee_asset="ETH",
            fee_estimate="{}",
            status=status,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    conn.execute(
        insert(payout_tx_line).values(
            tx_id=tx.id,
            request_id=payout.request_id,
            destination=payout.destination,
            amount_native=payout.amount.amount,
            fee_share_native=0,
        )
    )


# --------------------------------------------------------------------------- pricing


def test_estimate_prices_at_the_chains_base_fee_and_estimates_token_gas(
    eth_rails: RailFactory, eth_w3: Web3, ganache_node: GanacheNode
) -> None:
    settings = EthPayoutSettings()
    hot = new_key()
    rail = eth_rails(hot, settings=settings)
    tip = settings.priority_fee_wei

    base = base_fee(rail, "pending")
    plain = rail.estimate(ETH, [line(Money(MILLI_ETH, ETH))])
    assert dict(plain.params) == {
        "gas_limit": 21_000,
        "gas_estimate": 21_000,
        "base_fee": base,
        "max_fee_per_gas": base * settings.base_fee_multiplier + tip,
        "max_priority_fee_per_gas": tip,
    }
    assert plain.total == Money(21_000 * (base + tip), ETH)

    # A fee cap below base fee + tip: the cap holds, and the expected price is the cap.
    capped_at = base + tip // 2
    capped = eth_rails(hot, settings=EthPayoutSettings(max_fee_per_gas_wei=capped_at))
    estimate = capped.estimate(ETH, [line(Money(MILLI_ETH, ETH))])
    assert estimate.params["max_fee_per_gas"] == capped_at
    # The tip never exceeds the cap (the base fee decays on a quiet chain, so it may be tiny).
    assert estimate.params["max_priority_fee_per_gas"] == min(tip, capped_at)
    assert estimate.total == Money(21_000 * capped_at, ETH)

    # USDT: the hot wallet holds none yet, so the transfer cannot be estimated.
    payout = line(Money(2_000_000, USDT_ERC20))
    fallback = rail.estimate(USDT_ERC20, [payout])
    assert fallback.params["gas_limit"] == settings.usdt_gas_limit
    assert "fallback" in fallback.source

    ganache_node.faucet().fund(rail.hot_address(), Money(5_000_000, USDT_ERC20))
    token = ganache.usdt_contract(eth_w3, ganache_node.usdt_address)
    expected_gas = token.functions.transfer(payout.destination, 2_000_000).estimate_gas(
        {"from": Web3.to_checksum_address(rail.hot_address())}
    )
    estimated = rail.estimate(USDT_ERC20, [payout])
    assert estimated.params["gas_estimate"] == expected_gas
    assert estimated.params["gas_limit"] == -(-expected_gas * 120 // 100)
    assert "eth_estimateGas" in estimated.source
    assert estimated.total == Money(expected_gas * (estimated.params["base_fee"] + tip), ETH)


# --------------------------------------------------------------------------- ETH payouts


def test_eth_payout_is_broadcast_mined_and_final_and_a_rebroadcast_pays_once(
    db: Database, eth_rails: RailFactory, eth_w3: Web3, ganache_node: GanacheNode
) -> None:
    hot = new_key()
    rail = eth_rails(hot, confirmations=2)
    ganache_node.faucet().fund(rail.hot_address(), Money(100 * MILLI_ETH, ETH))
    payout = line(Money(12 * MILLI_ETH + 345, ETH))

    with db.transaction() as conn:
        rail.check_funds(conn, ETH, [payout])
    tx = sign(db, rail, ETH, [payout])
    assert tx.spend_key == f"eth:{rail.hot_address().lower()}:0"
    assert tx.spend["nonce"] == 0 and tx.spend["to"] == payout.destination
    assert tx.raw.startswith("0x") and tx.txid == Web3.keccak(hexstr=tx.raw).to_0x_hex()
    assert next_nonce_row(db, rail) == 1
    assert rail.status(tx).state is TxState.UNKNOWN  # signed, never sent

    assert rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED
    mined = rail.status(tx)  # instamine: in a block at once, one confirmation of two
    assert mined.state is TxState.MINED and mined.confirmations == 1
    assert mined.fee_paid is None

    mine(rail)
    final = rail.status(tx)
    assert final.state is TxState.FINAL
    assert final.fee_paid == Money(receipt_fee(eth_w3, tx.txid), ETH)
    assert final.fee_paid.amount <= tx.fee.amount
    assert final.block_number == eth_w3.eth.get_transaction_receipt(HexStr(tx.txid))["blockNumber"]
    assert eth_balance(eth_w3, payout.destination) == payout.amount.amount

    # The worker may send the same bytes again (it did not see the first answer): accepted,
    # and nothing is paid twice.
    assert rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED
    mine(rail)
    assert eth_balance(eth_w3, payout.destination) == payout.amount.amount
    spent = 100 * MILLI_ETH - eth_balance(eth_w3, rail.hot_address())
    assert spent == payout.amount.amount + final.fee_paid.amount
    assert rail.status(tx).state is TxState.FINAL


def test_broadcast_sends_in_nonce_order(
    db: Database, eth_rails: RailFactory, eth_w3: Web3, ganache_node: GanacheNode
) -> None:
    # Two workers may sign nonces 0 and 1 and reach the node in the other order: the later
    # nonce is held back (nothing sent) until the earlier one is in, then it goes through.
    rail = eth_rails(new_key(), confirmations=1)
    ganache_node.faucet().fund(rail.hot_address(), Money(100 * MILLI_ETH, ETH))
    first, second = line(Money(MILLI_ETH, ETH)), line(Money(2 * MILLI_ETH, ETH))
    tx0 = sign(db, rail, ETH, [first])
    tx1 = sign(db, rail, ETH, [second])

    early = rail.broadcast(tx1)
    assert early.outcome is BroadcastOutcome.DEFERRED
    assert "nonce 1" in early.detail and "nonce 0" in early.detail
    assert rail.status(tx1).state is TxState.UNKNOWN  # the node never saw it
    assert (
        eth_w3.eth.get_transaction_count(Web3.to_checksum_address(rail.hot_address()), "pending")
        == 0
    )

    assert rail.broadcast(tx0).outcome is BroadcastOutcome.ACCEPTED
    assert rail.broadcast(tx1).outcome is BroadcastOutcome.ACCEPTED
    mine(rail)
    assert eth_balance(eth_w3, first.destination) == MILLI_ETH
    assert eth_balance(eth_w3, second.destination) == 2 * MILLI_ETH
    assert eth_w3.eth.get_transaction_count(Web3.to_checksum_address(rail.hot_address())) == 2


def test_nodes_answers_to_broadcast(
    db: Database, eth_rails: RailFactory, ganache_node: GanacheNode
) -> None:
    hot = new_key()
    rail = eth_rails(hot)
    ganache_node.faucet().fund(rail.hot_address(), Money(10 * MILLI_ETH, ETH))
    # Two payouts of 6 mETH from 10, the first never stored (so not counted in flight): the
    # second is signed, and once the first is in a block the node refuses it.
    first = sign(db, rail, ETH, [line(Money(6 * MILLI_ETH, ETH))])
    unfunded = sign(db, rail, ETH, [line(Money(6 * MILLI_ETH, ETH))])
    assert rail.broadcast(first).outcome is BroadcastOutcome.ACCEPTED
    refused = rail.broadcast(unfunded)
    assert refused.outcome is BroadcastOutcome.REJECTED
    assert "insufficient funds" in refused.detail

    down = eth_rails(hot, url=f"http://127.0.0.1:{free_port()}")
    assert down.broadcast(unfunded).outcome is BroadcastOutcome.UNAVAILABLE
    with pytest.raises(RailUnavailable):
        down.status(unfunded)
    with pytest.raises(RailUnavailable):
        down.estimate(ETH, [line(Money(MILLI_ETH, ETH))])


# --------------------------------------------------------------------------- USDT payouts


def test_usdt_payout_is_final_by_the_tokens_transfer_event(
    db: Database, eth_rails: RailFactory, eth_w3: Web3, ganache_node: GanacheNode
) -> None:
    rail = eth_rails(new_key())
    faucet = ganache_node.faucet()
    faucet.fund(rail.hot_address(), Money(20 * MILLI_ETH, ETH))
    faucet.fund(rail.hot_address(), Money(50_000_000, USDT_ERC20))
    payout = line(Money(12_345_678, USDT_ERC20))

    with db.transaction() as conn:
        rail.check_funds(conn, USDT_ERC20, [payout])
    tx = sign(db, rail, USDT_ERC20, [payout])
    assert tx.spend["token"] == ganache_node.usdt_address
    assert rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED
    final = rail.status(tx)
    assert final.state is TxState.FINAL
    assert final.fee_paid == Money(receipt_fee(eth_w3, tx.txid), ETH)
    assert token_balance(eth_w3, ganache_node, payout.destination) == 12_345_678
    assert token_balance(eth_w3, ganache_node, rail.hot_address()) == 50_000_000 - 12_345_678

    # Judged by the event, not by the receipt status: the same receipt does not make a
    # payout of another amount final.
    other = stored(
        SignedTx(tx.txid, tx.raw, tx.spend_key, tx.spend, tx.fee),
        [PayoutLine(payout.request_id, payout.destination, Money(12_345_679, USDT_ERC20))],
    )
    judged = rail.status(other)
    assert judged.state is TxState.FAILED
    assert "no Transfer" in judged.detail and judged.fee_paid == final.fee_paid


def test_usdt_transfer_that_reverts_is_failed_and_its_fee_recorded(
    db: Database, eth_rails: RailFactory, eth_w3: Web3, ganache_node: GanacheNode
) -> None:
    rail = eth_rails(new_key())
    faucet = ganache_node.faucet()
    faucet.fund(rail.hot_address(), Money(20 * MILLI_ETH, ETH))
    faucet.fund(rail.hot_address(), Money(5_000_000, USDT_ERC20))

    with db.transaction() as conn, pytest.raises(HotWalletShort) as short:
        rail.check_funds(conn, USDT_ERC20, [line(Money(9_000_000, USDT_ERC20))])
    assert "holds 5.00 USDT-ERC20" in short.value.detail
    assert "send at least 4.00 USDT-ERC20" in short.value.detail

    # Two payouts of 3 USDT from 5, the first never stored (so not counted in flight): the
    # second is signed, and once the first is in a block its transfer reverts.
    first = sign(db, rail, USDT_ERC20, [line(Money(3_000_000, USDT_ERC20))])
    payout = line(Money(3_000_000, USDT_ERC20))
    tx = sign(db, rail, USDT_ERC20, [payout])
    assert rail.broadcast(first).outcome is BroadcastOutcome.ACCEPTED
    assert rail.status(first).state is TxState.FINAL
    assert rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED
    failed = rail.status(tx)
    assert failed.state is TxState.FAILED
    assert failed.detail == "the transaction reverted"
    assert failed.fee_paid == Money(receipt_fee(eth_w3, tx.txid), ETH)
    assert failed.fee_paid.amount > 0
    assert token_balance(eth_w3, ganache_node, payout.destination) == 0
    assert token_balance(eth_w3, ganache_node, rail.hot_address()) == 2_000_000


# --------------------------------------------------------------------------- nonces


def test_two_workers_allocate_nonces_without_gaps_or_repeats(
    pg_databases: DatabaseFactory, eth_rails: RailFactory, ganache_node: GanacheNode
) -> None:
    db = pg_databases.new()
    hot = new_key()
    workers = [eth_rails(hot), eth_rails(hot)]
    ganache_node.faucet().fund(workers[0].hot_address(), Money(10 * MILLI_ETH, ETH))
    estimate = workers[0].estimate(ETH, [line(Money(MILLI_ETH, ETH))])
    start = threading.Barrier(2)
    nonces: list[int] = []
    errors: list[BaseException] = []

    def work(rail: EthRail) -> None:
        try:
            start.wait()  # both begin with no nonce row: they race to create it
            for _ in range(15):
                with db.transaction() as conn:
                    signed = rail.sign(conn, ETH, [line(Money(MILLI_ETH, ETH))], estimate, now=NOW)
                nonces.append(int(signed.spend["nonce"]))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(rail,)) for rail in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(nonces) == list(range(30))
    assert next_nonce_row(db, workers[0]) == 30


def test_key_used_outside_kassa_is_skipped_and_its_victim_is_dead(
    db: Database, eth_rails: RailFactory, eth_w3: Web3, ganache_node: GanacheNode
) -> None:
    hot = new_key()
    rail = eth_rails(hot)
    ganache_node.faucet().fund(rail.hot_address(), Money(50 * MILLI_ETH, ETH))
    first = sign(db, rail, ETH, [line(Money(MILLI_ETH, ETH))])
    assert rail.broadcast(first).outcome is BroadcastOutcome.ACCEPTED
    assert rail.status(first).state is TxState.FINAL

    # Someone uses the key directly for nonces 1 and 2.
    send_with_key(rail, hot, 1)
    send_with_key(rail, hot, 2)
    skipped = sign(db, rail, ETH, [line(Money(MILLI_ETH, ETH))])
    assert skipped.spend["nonce"] == 3
    assert next_nonce_row(db, rail) == 4

    # Before it is broadcast, nonce 3 is used outside too: the stored transaction is dead.
    assert rail.status(skipped).state is TxState.UNKNOWN
    send_with_key(rail, hot, 3)
    dead = rail.status(skipped)
    assert dead.state is TxState.DEAD
    assert "nonce 3" in dead.detail
    refused = rail.broadcast(skipped)
    assert refused.outcome is BroadcastOutcome.REJECTED
    assert "nonce too low" in refused.detail
    assert eth_balance(eth_w3, skipped.lines[0].destination) == 0
    assert sign(db, rail, ETH, [line(Money(MILLI_ETH, ETH))]).spend["nonce"] == 4


# --------------------------------------------------------------------------- replacement


def test_stuck_payout_is_replaced_and_the_replacement_pays_once(
    db: Database, eth_rails: RailFactory, eth_w3: Web3, ganache_node: GanacheNode
) -> None:
    hot = new_key()
    settings = EthPayoutSettings()
    rail = eth_rails(hot, settings=settings)
    ganache_node.faucet().fund(rail.hot_address(), Money(50 * MILLI_ETH, ETH))
    warm_up = sign(db, rail, ETH, [line(Money(MILLI_ETH, ETH))])  # nonce 0 (see the docstring)
    assert rail.broadcast(warm_up).outcome is BroadcastOutcome.ACCEPTED
    payout = line(Money(7 * MILLI_ETH, ETH))

    assert rail.rpc.call("miner_stop") is True
    try:
        stuck = sign(db, rail, ETH, [payout])
        assert rail.broadcast(stuck).outcome is BroadcastOutcome.ACCEPTED
        assert rail.status(stuck).state is TxState.PENDING

        with db.transaction() as conn:
            signed = rail.replacement(conn, stuck, bump_percent=25, now=NOW)
        assert signed is not None
        bumped = stored(signed, [payout])
        assert bumped.spend_key == stuck.spend_key and bumped.spend["nonce"] == 1
        assert bumped.txid != stuck.txid
        old, new = stuck.spend["fees"], bumped.spend["fees"]
        assert new["max_priority_fee_per_gas"] >= -(-old["max_priority_fee_per_gas"] * 125 // 100)
        assert new["max_fee_per_gas"] >= -(-old["max_fee_per_gas"] * 125 // 100)
        assert new["max_fee_per_gas"] <= settings.max_fee_per_gas_wei
        assert next_nonce_row(db, rail) == 2  # a replacement allocates nothing

        # No room under the configured maximum: no replacement.
        ceiling = EthPayoutSettings(max_fee_per_gas_wei=old["max_fee_per_gas"])
        with db.transaction() as conn:
            assert (
                eth_rails(hot, settings=ceiling).replacement(conn, stuck, bump_percent=25, now=NOW)
                is None
            )

        assert rail.broadcast(bumped).outcome is BroadcastOutcome.ACCEPTED
        # The node dropped the original, but nothing proves it dead yet.
        assert rail.status(stuck).state is TxState.UNKNOWN
        assert rail.status(bumped).state is TxState.PENDING
    finally:
        rail.rpc.call("miner_start")
    mine(rail)

    final = rail.status(bumped)
    assert final.state is TxState.FINAL
    assert final.fee_paid == Money(receipt_fee(eth_w3, bumped.txid), ETH)
    assert rail.status(stuck).state is TxState.DEAD
    assert eth_balance(eth_w3, payout.destination) == payout.amount.amount


# --------------------------------------------------------------------------- funds


def test_check_funds_counts_the_balance_and_payouts_in_flight(
    db: Database, eth_rails: RailFactory, eth_w3: Web3, ganache_node: GanacheNode
) -> None:
    rail = eth_rails(new_key())
    hot = rail.hot_address()
    with db.transaction() as conn, pytest.raises(HotWalletShort) as short:
        rail.check_funds(conn, ETH, [line(Money(MILLI_ETH, ETH))])
    assert f"hot wallet {hot} holds 0.00 ETH" in short.value.detail
    assert f"to {hot}" in short.value.detail
    with db.transaction() as conn, pytest.raises(HotWalletShort) as short:
        rail.check_funds(conn, USDT_ERC20, [line(Money(1_000_000, USDT_ERC20))])
    assert "holds 0.00 USDT-ERC20" in short.value.detail

    ganache_node.faucet().fund(hot, Money(10 * MILLI_ETH, ETH))
    payout = line(Money(6 * MILLI_ETH, ETH))
    with db.transaction() as conn:
        rail.check_funds(conn, ETH, [payout])
    first = sign(db, rail, ETH, [payout])
    with db.transaction() as conn:
        store_as_worker(conn, first, ETH, "signed")

    # The signed payout will spend 6 mETH plus its fee: 6 more do not fit in 10.
    with db.transaction() as conn, pytest.raises(HotWalletShort) as short:
        rail.check_funds(conn, ETH, [line(Money(6 * MILLI_ETH, ETH))])
    assert "committed to 1 unconfirmed payout" in short.value.detail
    with db.transaction() as conn:
        rail.check_funds(conn, ETH, [line(Money(3 * MILLI_ETH, ETH))])

    # Once it is in a block the balance shows it; it is not counted twice.
    assert rail.broadcast(first).outcome is BroadcastOutcome.ACCEPTED
    assert rail.status(first).state is TxState.FINAL
    left = eth_balance(eth_w3, hot)
    fee_cap = rail.estimate(ETH, [payout]).params
    room = left - fee_cap["gas_limit"] * fee_cap["max_fee_per_gas"]
    with db.transaction() as conn:
        rail.check_funds(conn, ETH, [line(Money(room, ETH))])
    with db.transaction() as conn, pytest.raises(HotWalletShort):
        rail.check_funds(conn, ETH, [line(Money(room + 1, ETH))])


@pytest.mark.parametrize(
    ("coin", "fund", "amount"),
    [
        (ETH, [Money(10 * MILLI_ETH, ETH)], 6 * MILLI_ETH),
        (USDT_ERC20, [Money(20 * MILLI_ETH, ETH), Money(5_000_000, USDT_ERC20)], 3_000_000),
    ],
    ids=["eth", "usdt"],
)
def test_sign_checks_the_funds_again_so_two_payouts_both_checked_do_not_overspend(
    db: Database,
    eth_rails: RailFactory,
    ganache_node: GanacheNode,
    coin: Asset,
    fund: list[Money],
    amount: int,
) -> None:
    # Two workers each passed check_funds (in its own transaction) for a wallet that pays only
    # one of the two payouts; then each signs and stores in its signing transaction.
    rail = eth_rails(new_key())
    for money in fund:
        ganache_node.faucet().fund(rail.hot_address(), money)
    first, second = line(Money(amount, coin)), line(Money(amount, coin))
    estimates = [rail.estimate(coin, [first]), rail.estimate(coin, [second])]
    for payout in (first, second):
        with db.transaction() as conn:
            rail.check_funds(conn, coin, [payout])

    with db.transaction() as conn:
        signed = rail.sign(conn, coin, [first], estimates[0], now=NOW)
        store_as_worker(conn, stored(signed, [first]), coin, "signed")
    assert signed.spend["nonce"] == 0
    with db.transaction() as conn, pytest.raises(HotWalletShort) as short:
        rail.sign(conn, coin, [second], estimates[1], now=NOW)
        pytest.fail("signed a payout the hot wallet cannot pay besides the first")
    assert "of it committed to" in short.value.detail
    assert f"to {rail.hot_address()}" in short.value.detail
    # The refused signing took no nonce: the next payout that fits gets nonce 1.
    assert next_nonce_row(db, rail) == 1
    assert sign(db, rail, coin, [line(Money(1, coin))]).spend["nonce"] == 1


def lock_waiter_seen(db: Database, timeout: float = 5) -> bool:
    """Whether a session of ``db``'s PostgreSQL database waits for a lock within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.transaction() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        if waiting:
            return True
        time.sleep(0.02)
    return False


def test_a_signer_waits_for_the_other_to_commit_then_sees_its_payout(
    pg_databases: DatabaseFactory, eth_rails: RailFactory, ganache_node: GanacheNode
) -> None:
    # The same race on PostgreSQL with the two signing transactions open at once: the first
    # signs and stores and keeps its transaction open until the second waits for the nonce
    # row's lock; once the first commits, the second sees its payout and refuses.
    db = pg_databases.new()
    hot = new_key()
    workers = [eth_rails(hot), eth_rails(hot)]
    ganache_node.faucet().fund(workers[0].hot_address(), Money(10 * MILLI_ETH, ETH))
    payouts = [line(Money(6 * MILLI_ETH, ETH)), line(Money(6 * MILLI_ETH, ETH))]
    estimates = [rail.estimate(ETH, [p]) for rail, p in zip(workers, payouts, strict=True)]
    for rail, payout in zip(workers, payouts, strict=True):
        with db.transaction() as conn:
            rail.check_funds(conn, ETH, [payout])
    first_stored = threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            with db.transaction() as conn:
                tx = workers[0].sign(conn, ETH, [payouts[0]], estimates[0], now=NOW)
                store_as_worker(conn, stored(tx, [payouts[0]]), ETH, "signed")
                first_stored.set()
                outcome["second waited"] = lock_waiter_seen(db)
            outcome["first"] = tx
        except BaseException as error:  # pragma: no cover - reported below
            first_stored.set()
            outcome["first"] = error

    def second() -> None:
        first_stored.wait(timeout=30)
        try:
            with db.transaction() as conn:
                tx = workers[1].sign(conn, ETH, [payouts[1]], estimates[1], now=NOW)
                store_as_worker(conn, stored(tx, [payouts[1]]), ETH, "signed")
            outcome["second"] = tx
        except BaseException as error:
            outcome["second"] = error

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    signed = outcome["first"]
    assert isinstance(signed, SignedTx) and signed.spend["nonce"] == 0
    assert outcome["second waited"] is True
    short = outcome["second"]
    assert isinstance(short, HotWalletShort), short
    assert "committed to 1 unconfirmed payout" in short.detail
    assert next_nonce_row(db, workers[0]) == 1
    with db.transaction() as conn:
        assert conn.execute(select(payout_tx.c.txid)).scalars().all() == [signed.txid]


def test_assets_fee_asset_and_no_dust_rule(eth_rails: RailFactory) -> None:
    rail = eth_rails(new_key())
    assert rail.assets == (ETH, USDT_ERC20)
    assert rail.fee_asset == ETH
    assert rail.hot_address() == parse_eth_address(rail.hot_address()).text
    assert rail.dust_limit(ETH, new_address()) == Money(1, ETH)
    assert rail.dust_limit(USDT_ERC20, new_address()) == Money(1, USDT_ERC20)
