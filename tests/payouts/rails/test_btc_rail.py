"""`BtcRail` against the real bcoin regtest node (session fixture `bitcoin_node`).

Each test makes a fresh random hot key, funds it from the devnet faucet (a real signed
transaction, mined at once) and drives the rail the way the payout worker does: estimate,
check_funds, sign inside a database transaction, broadcast, status, settle. Blocks are mined on
demand with ``generatetoaddress``. The node is shared by the whole session, so no height is
assumed: every rail starts its coin scan at the tip it finds.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import coincurve
import pytest
from sqlalchemy import select

from kassa.chains.btc.address import BtcAddress, BtcAddressKind, parse_btc_address
from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.btc.rpc import BtcRpc, RpcError, satoshi
from kassa.chains.btc.tx import (
    SEQUENCE_RBF,
    Coin,
    OutPoint,
    Transaction,
    TxOut,
    build_transaction,
    estimate_vsize,
    fee_for_vsize,
)
from kassa.chains.network import BtcNetwork, Chain
from kassa.clock import ManualClock
from kassa.db import Database
from kassa.money import BTC, ETH, Money
from kassa.payouts.rails.base import (
    BroadcastOutcome,
    HotWalletShort,
    PayoutLine,
    PayoutNotSendable,
    RailUnavailable,
    SignedTx,
    StoredTx,
    TxState,
)
from kassa.payouts.rails.btc import BtcRail, HotWalletReorg
from kassa.payouts.settings import BtcPayoutSettings
from kassa.payouts.signer import LocalKeySigner
from kassa.payouts.tables import btc_hot_sync, btc_hot_utxo
from kassa_dev.devnet import bitcoin as devbtc
from kassa_dev.devnet.testing import BitcoinNode, free_port

NET = BtcNetwork.REGTEST
NOW = datetime(2026, 11, 20, 14, 3, 11, tzinfo=UTC)
FAUCET = devbtc.faucet_key().address


# --------------------------------------------------------------------------- helpers


def new_address(kind: BtcAddressKind = BtcAddressKind.P2WPKH) -> str:
    """A fresh address nobody holds the key of (a random program)."""
    size = 32 if kind in (BtcAddressKind.P2WSH, BtcAddressKind.P2TR) else 20
    return BtcAddress.from_program(
        kind, uuid.uuid4().bytes + uuid.uuid4().bytes[: size - 16], NET
    ).text


def line(destination: str, sat: int) -> PayoutLine:
    return PayoutLine(uuid.uuid4(), destination, Money(sat, BTC))


def stored(signed: SignedTx, lines: Sequence[PayoutLine]) -> StoredTx:
    """The transaction as the worker stores it (spend read back from its JSON)."""
    return StoredTx(
        id=uuid.uuid4(),
        chain=Chain.BTC,
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


@dataclass
class Hot:
    """A rail over a fresh hot key, its database and the node."""

    node: BitcoinNode
    db: Database
    rpc: BtcRpc
    key: coincurve.PrivateKey
    rail: BtcRail

    @property
    def address(self) -> str:
        return self.rail.hot_address()

    def fund(self, sat: int) -> str:
        """Pay the hot address from the faucet; mined into one block."""
        return self.node.faucet().fund(self.address, Money(sat, BTC))

    def mine(self, blocks: int = 1) -> list[str]:
        return self.node.rpc().generate(blocks, FAUCET)

    def sync(self) -> Any:
        with self.db.transaction() as conn:
            return self.rail.wallet.sync(conn, now=NOW)

    def coins(self) -> dict[str, Any]:
        with self.db.transaction() as conn:
            rows = conn.execute(select(btc_hot_utxo)).all()
        return {f"{r.txid}:{r.vout}": r for r in rows}

    def check_funds(self, lines: Sequence[PayoutLine]) -> None:
        with self.db.transaction() as conn:
            self.rail.check_funds(conn, BTC, lines)

    def sign_only(self, lines: Sequence[PayoutLine]) -> SignedTx:
        """What the worker does: estimate, check the funds, sign in a transaction."""
        estimate = self.rail.estimate(BTC, lines)
        self.check_funds(lines)
        with self.db.transaction() as conn:
            return self.rail.sign(conn, BTC, lines, estimate, now=NOW)

    def sign(self, lines: Sequence[PayoutLine]) -> StoredTx:
        return stored(self.sign_only(lines), lines)

    def settle(self, tx: StoredTx, state: TxState) -> None:
        with self.db.transaction() as conn:
            self.rail.settle(conn, tx, state)

    def onchain(self, txid: str) -> dict[str, Any]:
        return self.rpc.get_raw_transaction(txid)


def make_hot(
    node: BitcoinNode, db: Database, rpc: BtcRpc, *, confirmations: int = 1, **settings: Any
) -> Hot:
    key = coincurve.PrivateKey()
    rail = BtcRail(
        rpc,
        LocalKeySigner({Chain.BTC: key}),
        NET,
        settings=BtcPayoutSettings(**settings),
        confirmations=confirmations,
        scan_from_height=rpc.get_blockchain_info()["blocks"] + 1,
        clock=ManualClock(NOW),
    )
    return Hot(node, db, rpc, key, rail)


@pytest.fixture
def btc_rpc(bitcoin_node: BitcoinNode) -> Iterator[BtcRpc]:
    with BtcRpc(bitcoin_node.url, bitcoin_node.api_key) as rpc:
        yield rpc


@pytest.fixture
def hot(bitcoin_node: BitcoinNode, db: Database, btc_rpc: BtcRpc) -> Hot:
    return make_hot(bitcoin_node, db, btc_rpc)


def pays(found: dict[str, Any], vout: int) -> tuple[str, int]:
    """(script hex, sat) of output ``vout`` of a decoded transaction."""
    output = found["vout"][vout]
    return output["scriptPubKey"]["hex"], satoshi(output["value"])


def script_hex(address: str) -> str:
    return parse_btc_address(address, NET).script_pubkey.hex()


# --------------------------------------------------------------------------- the coin scan


def test_the_scan_records_a_funded_coin_once_it_is_final_and_only_once(
    bitcoin_node: BitcoinNode, db: Database, btc_rpc: BtcRpc
) -> None:
    hot = make_hot(bitcoin_node, db, btc_rpc, confirmations=2)
    funding = hot.fund(150_000)  # one confirmation: not final at 2
    assert hot.sync().found == 0
    assert hot.coins() == {}
    with pytest.raises(HotWalletShort) as short:
        hot.check_funds([line(new_address(), 100_000)])
    assert "has 0 sat spendable" in short.value.detail
    assert "1 coins (150000 sat) paying it are in blocks not final yet" in short.value.detail

    hot.mine()  # second confirmation
    assert hot.sync().found == 1
    [(outpoint, row)] = hot.coins().items()
    assert outpoint.startswith(funding + ":")
    assert (row.value, row.status, row.address) == (150_000, "available", hot.address)
    assert row.height == btc_rpc.get_block_header(hot.onchain(funding)["blockhash"])["height"]
    hot.check_funds([line(new_address(), 100_000)])

    assert hot.sync().scanned == 0  # nothing new: the cheap path
    hot.mine(2)
    again = hot.sync()
    assert (again.scanned, again.found) == (2, 0)
    assert list(hot.coins()) == [outpoint]
    with db.transaction() as conn:
        progress = conn.execute(select(btc_hot_sync)).one()
    assert progress.block_hash == btc_rpc.get_block_hash(progress.height)
    assert progress.height == btc_rpc.get_blockchain_info()["blocks"] - 1


def test_a_long_scan_is_spread_over_several_checks(hot: Hot) -> None:
    hot.rail.wallet.max_bytes = 1  # one block per call
    start = hot.rail.wallet.scan_from_height
    hot.mine(2)
    hot.fund(50_000)  # in block start + 2
    for scanned in (start, start + 1):
        with pytest.raises(HotWalletShort) as short:
            hot.check_funds([line(new_address(), 20_000)])
        assert f"read the chain up to block {scanned} of {start + 2}" in short.value.detail
    hot.check_funds([line(new_address(), 20_000)])
    assert [c.value for c in hot.coins().values()] == [50_000]


def test_a_reorg_below_the_scanned_height_stops_the_wallet(
    bitcoin_node: BitcoinNode, db: Database, btc_rpc: BtcRpc
) -> None:
    hot = make_hot(bitcoin_node, db, btc_rpc)
    [scanned] = hot.mine()
    assert hot.sync().scanned == 1
    btc_rpc.call("invalidateblock", scanned)
    hot.mine(2)  # a longer chain without the block the scan read as final
    with pytest.raises(HotWalletReorg) as stopped:
        hot.check_funds([line(new_address(), 10_000)])
    assert stopped.value.code == "btc_hot_wallet_reorg"
    assert scanned in stopped.value.detail
    assert "deeper than the confirmations setting" in stopped.value.detail


# --------------------------------------------------------------------------- paying


def test_a_payout_pays_exactly_and_its_change_pays_the_next_one(hot: Hot) -> None:
    hot.fund(500_000)
    destination = new_address()
    first = [line(destination, 120_000)]
    estimate = hot.rail.estimate(BTC, first)
    assert estimate.source == "fallback"  # regtest has no fee market
    rate = estimate.params["sat_per_kvb"]
    assert rate == BtcPayoutSettings().fallback_sat_per_kvb
    tx = hot.sign(first)

    [(spent_outpoint, coin)] = hot.coins().items()
    assert (coin.status, coin.reserved_for) == ("reserved", tx.spend_key)
    assert tx.spend_key == f"btc:{spent_outpoint}"
    vsize = estimate_vsize(1, [parse_btc_address(destination, NET).script_pubkey, b"\0" * 22])
    assert tx.fee == Money(fee_for_vsize(vsize, rate), BTC) == estimate.total
    assert tx.spend["change"] == {"vout": 1, "value": 500_000 - 120_000 - tx.fee.amount}
    parsed = Transaction.parse(bytes.fromhex(tx.raw))
    assert parsed.vsize <= vsize
    assert all(i.sequence == SEQUENCE_RBF for i in parsed.inputs)

    assert hot.rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED
    assert hot.rail.status(tx).state is TxState.PENDING
    [block] = hot.mine()
    status = hot.rail.status(tx)
    assert (status.state, status.block_hash, status.fee_paid) == (TxState.FINAL, block, tx.fee)
    found = hot.onchain(tx.txid)
    assert pays(found, 0) == (script_hex(destination), 120_000)
    assert pays(found, 1) == (script_hex(hot.address), 500_000 - 120_000 - tx.fee.amount)

    hot.settle(tx, TxState.FINAL)
    coins = hot.coins()
    assert (coins[spent_outpoint].status, coins[spent_outpoint].spent_by_txid) == (
        "spent",
        tx.txid,
    )
    change = coins[f"{tx.txid}:1"]
    assert (change.status, change.value, change.height) == (
        "available",
        500_000 - 120_000 - tx.fee.amount,
        status.block_number,
    )

    second = hot.sign([line(destination, 200_000)])
    assert second.spend["inputs"] == [
        {"txid": tx.txid, "vout": 1, "value": 500_000 - 120_000 - tx.fee.amount}
    ]
    assert hot.rail.broadcast(second).outcome is BroadcastOutcome.ACCEPTED
    hot.mine()
    assert hot.rail.status(second).state is TxState.FINAL
    assert pays(hot.onchain(second.txid), 0) == (script_hex(destination), 200_000)
    # This time the scan reads the block before the worker settles: it records the change
    # and the spend; the settle then finds them recorded and adds nothing twice.
    synced = hot.sync()
    assert (synced.found, synced.spent) == (1, 1)
    hot.settle(second, TxState.FINAL)
    coins = hot.coins()
    assert len(coins) == 3
    assert (coins[f"{tx.txid}:1"].status, coins[f"{tx.txid}:1"].spent_by_txid) == (
        "spent",
        second.txid,
    )
    assert coins[f"{second.txid}:1"].status == "available"
    assert hot.sync().found == 0


def test_a_batch_pays_each_payout_at_its_output_for_less_than_separate_transactions(
    hot: Hot,
) -> None:
    hot.fund(1_000_000)
    lines = [
        line(new_address(BtcAddressKind.P2WPKH), 50_000),
        # Not P2TR: bcoin 1.0.2 predates taproot and refuses witness v1 outputs as
        # non-standard ("scriptpubkey"); Core relays them.
        line(new_address(BtcAddressKind.P2WSH), 60_000),
        line(new_address(BtcAddressKind.P2PKH), 70_000),
    ]
    signed = hot.sign_only(lines)
    assert signed.outputs == {one.request_id: vout for vout, one in enumerate(lines)}
    batch = stored(signed, lines)
    assert batch.spend["change"]["vout"] == 3
    assert len(batch.spend["inputs"]) == 1
    separately = sum(hot.rail.estimate(BTC, [one]).total.amount for one in lines)
    assert batch.fee.amount < separately

    assert hot.rail.broadcast(batch).outcome is BroadcastOutcome.ACCEPTED
    hot.mine()
    assert hot.rail.status(batch).state is TxState.FINAL
    found = hot.onchain(batch.txid)
    for one in lines:
        vout = signed.outputs[one.request_id]
        assert pays(found, vout) == (script_hex(one.destination), one.amount.amount)
    assert len(found["vout"]) == 4


def test_dust_is_refused_and_dust_change_goes_to_the_fee(hot: Hot) -> None:
    p2wpkh, p2tr, p2pkh = (
        new_address(BtcAddressKind.P2WPKH),
        new_address(BtcAddressKind.P2TR),
        new_address(BtcAddressKind.P2PKH),
    )
    assert hot.rail.dust_limit(BTC, p2wpkh) == Money(294, BTC)
    assert hot.rail.dust_limit(BTC, p2tr) == Money(330, BTC)
    assert hot.rail.dust_limit(BTC, p2pkh) == Money(546, BTC)
    with pytest.raises(PayoutNotSendable):
        hot.rail.dust_limit(BTC, "0x52908400098527886E0F7030069857D2E4169EE7")
    with pytest.raises(PayoutNotSendable):
        hot.rail.dust_limit(ETH, p2wpkh)

    hot.fund(100_000)
    hot.sync()
    with pytest.raises(PayoutNotSendable) as refused, hot.db.transaction() as conn:
        hot.rail.sign(
            conn, BTC, [line(p2pkh, 545)], hot.rail.estimate(BTC, [line(p2pkh, 545)]), now=NOW
        )
    assert "below the dust limit of 546 sat" in refused.value.detail
    assert [c.status for c in hot.coins().values()] == ["available"]

    # Change below the dust limit is left to the fee: one output, and nothing to bump with.
    rate = hot.rail.estimate(BTC, [line(p2wpkh, 1)]).params["sat_per_kvb"]
    with_change = fee_for_vsize(
        estimate_vsize(1, [parse_btc_address(p2wpkh, NET).script_pubkey] * 2), rate
    )
    amount = 100_000 - with_change - 100
    tx = hot.sign([line(p2wpkh, amount)])
    assert tx.spend["change"] is None
    assert tx.fee == Money(100_000 - amount, BTC)
    assert len(Transaction.parse(bytes.fromhex(tx.raw)).outputs) == 1
    with hot.db.transaction() as conn:
        assert hot.rail.replacement(conn, tx, bump_percent=25, now=NOW) is None


def test_the_wallet_is_short_while_its_coins_are_reserved(hot: Hot) -> None:
    hot.fund(100_000)
    first = hot.sign([line(new_address(), 60_000)])
    with pytest.raises(HotWalletShort) as short:
        hot.check_funds([line(new_address(), 30_000)])
    assert short.value.code == "hot_wallet_short"
    detail = short.value.detail
    assert f"the BTC hot wallet {hot.address} has 0 sat spendable in 0 coins" in detail
    assert "100000 sat in 1 coins are reserved by 1 payout transactions in flight" in detail
    with pytest.raises(HotWalletShort), hot.db.transaction() as conn:
        lines = [line(new_address(), 30_000)]
        hot.rail.sign(conn, BTC, lines, hot.rail.estimate(BTC, lines), now=NOW)
    [reserved] = hot.coins().values()
    assert (reserved.status, reserved.reserved_for) == ("reserved", first.spend_key)


def test_concurrent_signers_never_reserve_the_same_coin(
    bitcoin_node: BitcoinNode, pg_databases: Any, btc_rpc: BtcRpc
) -> None:
    db = pg_databases.new()
    hot = make_hot(bitcoin_node, db, btc_rpc)
    for _ in range(4):
        hot.fund(100_000)
    hot.sync()
    lines = [[line(new_address(), 50_000)] for _ in range(4)]
    estimate = hot.rail.estimate(BTC, lines[0])

    # One signer holds its coin in an open transaction while the others sign: they skip the
    # locked coin instead of waiting for it (a wait would time out below).
    holding = threading.Event()
    others_done = threading.Event()
    results: dict[int, SignedTx] = {}
    errors: list[BaseException] = []

    def sign(index: int) -> None:
        try:
            with db.transaction() as conn:
                results[index] = hot.rail.sign(conn, BTC, lines[index], estimate, now=NOW)
                if index == 0:
                    holding.set()
                    assert others_done.wait(30), "the other signers blocked on a locked coin"
        except BaseException as error:  # reported in the main thread
            errors.append(error)
            holding.set()

    first = threading.Thread(target=sign, args=(0,))
    first.start()
    assert holding.wait(30)
    barrier = threading.Barrier(3)

    def together(index: int) -> None:
        barrier.wait(30)
        sign(index)

    others = [threading.Thread(target=together, args=(i,)) for i in (1, 2, 3)]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(60)
    others_done.set()
    first.join(60)
    assert errors == []

    inputs = [(i["txid"], i["vout"]) for r in results.values() for i in r.spend["inputs"]]
    assert len(inputs) == len(set(inputs)) == 4
    coins = hot.coins()
    assert sorted(c.reserved_for for c in coins.values()) == sorted(
        r.spend_key for r in results.values()
    )
    for index, signed in results.items():
        assert hot.rail.broadcast(stored(signed, lines[index])).outcome is BroadcastOutcome.ACCEPTED
    hot.mine()
    assert all(
        hot.rail.status(stored(s, lines[i])).state is TxState.FINAL for i, s in results.items()
    )


def test_a_payout_gathering_many_coins_has_a_spend_key_that_fits(hot: Hot) -> None:
    for _ in range(8):
        hot.fund(20_000)
    tx = hot.sign([line(new_address(), 150_000)])
    assert len(tx.spend["inputs"]) == 8
    # Eight "txid:vout" do not fit the 512-character columns: their hash stands in.
    assert tx.spend_key.startswith("btc:sha256:")
    assert {c.reserved_for for c in hot.coins().values()} == {tx.spend_key}
    assert hot.rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED
    hot.mine()
    assert hot.rail.status(tx).state is TxState.FINAL
    hot.settle(tx, TxState.FINAL)
    coins = hot.coins()
    assert sorted(c.status for c in coins.values()) == ["available"] + ["spent"] * 8
    assert coins[f"{tx.txid}:1"].value == 160_000 - 150_000 - tx.fee.amount


# --------------------------------------------------------------------------- the chain's word


def test_a_payout_whose_input_is_spent_elsewhere_is_dead_and_settle_frees_the_rest(
    hot: Hot,
) -> None:
    hot.fund(80_000)
    hot.fund(80_000)
    tx = hot.sign([line(new_address(), 120_000)])  # needs both coins
    first, second = (OutPoint(i["txid"], i["vout"]) for i in tx.spend["inputs"])
    assert hot.rail.status(tx).state is TxState.UNKNOWN  # signed, never sent

    # The key's holder spends the first coin directly.
    script = p2wpkh_address_for_key(hot.key, NET).script_pubkey
    conflict = build_transaction(
        [Coin(first, 80_000, script)],
        [TxOut(70_000, parse_btc_address(new_address(), NET).script_pubkey)],
    ).sign([hot.key])
    hot.rpc.send_raw_transaction(conflict.serialize().hex())
    # A conflict in the mempool can still go away: not dead yet. (Core's gettxout hides
    # outputs spent in its mempool, so the reason names the input; bcoin's does not.)
    assert hot.rail.status(tx).state is TxState.UNKNOWN
    refused = hot.rail.broadcast(tx)
    assert refused.outcome is BroadcastOutcome.REJECTED
    assert "spent" in refused.detail

    hot.mine()
    dead = hot.rail.status(tx)
    assert dead.state is TxState.DEAD
    assert str(first) in dead.detail

    hot.settle(tx, TxState.DEAD)
    coins = hot.coins()
    assert coins[str(first)].status == "spent"
    assert (coins[str(second)].status, coins[str(second)].reserved_for) == ("available", None)
    hot.sync()  # the scan names the transaction that spent it
    assert hot.coins()[str(first)].spent_by_txid == conflict.txid
    # The freed coin pays the next payout.
    again = hot.sign([line(new_address(), 50_000)])
    assert again.spend["inputs"] == [{"txid": second.txid, "vout": second.vout, "value": 80_000}]


def test_a_rebroadcast_of_the_same_bytes_is_accepted_and_pays_once(hot: Hot) -> None:
    hot.fund(300_000)
    destination = new_address()
    tx = hot.sign([line(destination, 100_000)])
    assert hot.rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED
    assert hot.rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED  # in the mempool
    [block] = hot.mine()
    assert hot.rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED  # in the chain
    assert hot.rail.status(tx).state is TxState.FINAL
    paid = [
        satoshi(out["value"])
        for item in hot.rpc.get_block(block)["tx"]
        for out in item["vout"]
        if out["scriptPubKey"]["hex"] == script_hex(destination)
    ]
    assert paid == [100_000]


def test_a_replacement_spends_the_same_inputs_for_a_higher_fee(hot: Hot) -> None:
    hot.fund(400_000)
    hot.fund(400_000)
    destination = new_address()

    # Built right: same inputs, same payment, the extra fee from the change, RBF signalled.
    original = hot.sign([line(destination, 100_000)])
    with hot.db.transaction() as conn:
        bumped_signed = hot.rail.replacement(conn, original, bump_percent=25, now=NOW)
    assert bumped_signed is not None
    bumped = stored(bumped_signed, original.lines)
    old, new = (Transaction.parse(bytes.fromhex(t.raw)) for t in (original, bumped))
    assert bumped.spend_key == original.spend_key
    assert [i.outpoint for i in new.inputs] == [i.outpoint for i in old.inputs]
    assert all(i.sequence == SEQUENCE_RBF for i in new.inputs)
    assert new.outputs[0] == old.outputs[0]
    extra = bumped.fee.amount - original.fee.amount
    assert extra >= original.fee.amount * 25 // 100
    assert extra >= new.vsize  # the relay increment, 1 sat/vB
    assert new.outputs[1].amount == old.outputs[1].amount - extra
    assert bumped.spend["change"] == {"vout": 1, "value": new.outputs[1].amount}

    # bcoin 1.0.2 has no replace-by-fee: once the original is in its mempool, it refuses the
    # replacement as a double spend; the replacement is then unknown, and dead once the
    # original is final.
    assert hot.rail.broadcast(original).outcome is BroadcastOutcome.ACCEPTED
    refused = hot.rail.broadcast(bumped)
    assert refused.outcome is BroadcastOutcome.REJECTED
    assert "bad-txns-inputs-spent" in refused.detail
    assert hot.rail.status(bumped).state is TxState.UNKNOWN
    hot.mine()
    assert hot.rail.status(original).state is TxState.FINAL
    assert hot.rail.status(bumped).state is TxState.DEAD
    hot.settle(original, TxState.FINAL)

    # The replacement is a valid transaction: sent instead of its original, it confirms.
    second = hot.sign([line(destination, 150_000)])
    with hot.db.transaction() as conn:
        replacement = hot.rail.replacement(conn, second, bump_percent=50, now=NOW)
    assert replacement is not None
    instead = stored(replacement, second.lines)
    assert hot.rail.broadcast(instead).outcome is BroadcastOutcome.ACCEPTED
    [block] = hot.mine()
    final = hot.rail.status(instead)
    assert (final.state, final.block_hash, final.fee_paid) == (TxState.FINAL, block, instead.fee)
    assert hot.rail.status(second).state is TxState.DEAD
    hot.settle(instead, TxState.FINAL)
    change = hot.coins()[f"{instead.txid}:1"]
    assert (change.status, change.value) == ("available", instead.spend["change"]["value"])


def without_index(monkeypatch: pytest.MonkeyPatch, rpc: BtcRpc, *txids: str) -> None:
    """The node as one without a full transaction index sees it (Core without -txindex, or
    its index still catching up): ``getrawtransaction`` answers -5 for ``txids`` even once
    they are mined; every other call is the real node's."""
    real = rpc.get_raw_transaction

    def get_raw_transaction(txid: str) -> dict[str, Any]:
        if txid in txids:
            raise RpcError(
                "getrawtransaction",
                -5,
                "No such mempool or blockchain transaction. Use gettransaction for wallet "
                "transactions.",
            )
        return real(txid)

    monkeypatch.setattr(rpc, "get_raw_transaction", get_raw_transaction)


def test_a_mined_payout_the_node_cannot_find_is_never_dead(
    bitcoin_node: BitcoinNode, db: Database, btc_rpc: BtcRpc, monkeypatch: pytest.MonkeyPatch
) -> None:
    hot = make_hot(bitcoin_node, db, btc_rpc, confirmations=2)
    hot.fund(300_000)
    hot.mine()  # the funding coin is final
    destination = new_address()
    tx = hot.sign([line(destination, 100_000)])
    assert hot.rail.broadcast(tx).outcome is BroadcastOutcome.ACCEPTED
    [block] = hot.mine()
    height = btc_rpc.get_block_header(block)["height"]
    without_index(monkeypatch, btc_rpc, tx.txid)

    mined = hot.rail.status(tx)
    assert (mined.state, mined.block_hash, mined.block_number, mined.confirmations) == (
        TxState.MINED,
        block,
        height,
        1,
    )
    hot.mine()  # its block is final now: the old code called it dead and paid it again
    final = hot.rail.status(tx)
    assert (final.state, final.block_hash, final.block_number, final.fee_paid) == (
        TxState.FINAL,
        block,
        height,
        tx.fee,
    )
    hot.settle(tx, TxState.FINAL)  # finds its block without the index too
    change = hot.coins()[f"{tx.txid}:1"]
    assert (change.status, change.height) == ("available", height)
    monkeypatch.undo()
    paid = [
        satoshi(out["value"])
        for item in btc_rpc.get_block(block)["tx"]
        for out in item["vout"]
        if out["scriptPubKey"]["hex"] == script_hex(destination)
    ]
    assert paid == [100_000]


def test_a_replaced_version_is_dead_and_the_mined_one_final_without_the_index(
    hot: Hot, monkeypatch: pytest.MonkeyPatch
) -> None:
    hot.fund(400_000)
    original = hot.sign([line(new_address(), 100_000)])
    with hot.db.transaction() as conn:
        bumped_signed = hot.rail.replacement(conn, original, bump_percent=25, now=NOW)
    assert bumped_signed is not None
    bumped = stored(bumped_signed, original.lines)
    # bcoin has no replace-by-fee: the first version sent is the one mined.
    assert hot.rail.broadcast(original).outcome is BroadcastOutcome.ACCEPTED
    [block] = hot.mine()
    without_index(monkeypatch, hot.rpc, original.txid, bumped.txid)

    final = hot.rail.status(original)
    assert (final.state, final.block_hash) == (TxState.FINAL, block)
    dead = hot.rail.status(bumped)
    assert dead.state is TxState.DEAD
    assert original.txid in dead.detail  # the version that won spent its input


def test_a_payout_over_a_coin_spent_before_it_was_signed_is_dead(
    hot: Hot, monkeypatch: pytest.MonkeyPatch
) -> None:
    funding = hot.fund(80_000)
    hot.sync()
    [coin] = hot.coins().values()
    assert coin.txid == funding
    # The key's holder spends the coin directly; Kassa's scan has not read that block yet.
    script = p2wpkh_address_for_key(hot.key, NET).script_pubkey
    conflict = build_transaction(
        [Coin(OutPoint(coin.txid, coin.vout), 80_000, script)],
        [TxOut(70_000, parse_btc_address(new_address(), NET).script_pubkey)],
    ).sign([hot.key])
    hot.rpc.send_raw_transaction(conflict.serialize().hex())
    hot.mine()
    lines = [line(new_address(), 50_000)]
    with hot.db.transaction() as conn:  # signed without the scan that would have seen it
        signed = hot.rail.sign(conn, BTC, lines, hot.rail.estimate(BTC, lines), now=NOW)
    tx = stored(signed, lines)
    without_index(monkeypatch, hot.rpc, tx.txid)
    dead = hot.rail.status(tx)
    assert dead.state is TxState.DEAD
    assert f"{coin.txid}:{coin.vout}" in dead.detail


def test_the_fee_rate_is_capped(btc_rpc: BtcRpc) -> None:
    rail = BtcRail(
        btc_rpc,
        LocalKeySigner({Chain.BTC: coincurve.PrivateKey()}),
        NET,
        settings=BtcPayoutSettings(fallback_sat_per_kvb=20_000, max_sat_per_kvb=4_000),
        confirmations=1,
    )
    destination = new_address()
    estimate = rail.estimate(BTC, [line(destination, 10_000)])
    vsize = estimate_vsize(1, [parse_btc_address(destination, NET).script_pubkey] * 2)
    assert (estimate.source, estimate.params["sat_per_kvb"]) == ("fallback", 4_000)
    assert estimate.total == Money(fee_for_vsize(vsize, 4_000), BTC)


def test_an_unreachable_node_is_unavailable_never_rejected(db: Database) -> None:
    key = coincurve.PrivateKey()
    with BtcRpc(f"http://127.0.0.1:{free_port()}", "no-node", timeout=2.0) as rpc:
        rail = BtcRail(
            rpc,
            LocalKeySigner({Chain.BTC: key}),
            NET,
            settings=BtcPayoutSettings(),
            confirmations=1,
        )
        script = p2wpkh_address_for_key(key, NET).script_pubkey
        payment = [line(new_address(), 40_000)]
        raw = build_transaction(
            [Coin(OutPoint("ab" * 32, 0), 50_000, script)],
            [TxOut(40_000, parse_btc_address(payment[0].destination, NET).script_pubkey)],
        ).sign([key])
        tx = StoredTx(
            id=uuid.uuid4(),
            chain=Chain.BTC,
            txid=raw.txid,
            raw=raw.serialize().hex(),
            spend_key=f"btc:{'ab' * 32}:0",
            spend={"inputs": [{"txid": "ab" * 32, "vout": 0, "value": 50_000}], "change": None},
            fee=Money(10_000, BTC),
            lines=tuple(payment),
            created_at=NOW,
            broadcast_at=None,
            expires_at=None,
        )
        assert rail.broadcast(tx).outcome is BroadcastOutcome.UNAVAILABLE
        with pytest.raises(RailUnavailable):
            rail.status(tx)
        with pytest.raises(RailUnavailable):
            rail.estimate(BTC, payment)
        with pytest.raises(RailUnavailable), db.transaction() as conn:
            rail.check_funds(conn, BTC, payment)
