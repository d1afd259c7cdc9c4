"""`BtcScanner` and `BtcRpc` against the real bcoin regtest node (session fixture `bitcoin_node`).

Payments are real transactions signed in Python (`kassa.chains.btc.tx`) from the devnet faucet
key and from development keys, broadcast and mined on demand. The node is shared by the whole
session, so nothing here assumes a block number: heights come from what the node answers.
A few tests at the end answer like Bitcoin Core through `httpx.MockTransport` (a stand-in for
the node, not for our code), for what bcoin cannot produce: a real fee estimate, HTTP 500 errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import coincurve
import httpx
import pytest

from kassa.chains.btc.address import parse_btc_address
from kassa.chains.btc.keys import p2wpkh_address_for_key
from kassa.chains.btc.rpc import (
    BtcRpc,
    RpcError,
    RpcTransportError,
    UnexpectedResponse,
    satoshi,
)
from kassa.chains.btc.scanner import BlockNotFound, BtcScanner, FeeEstimate, FeeSource, match_key
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
from kassa.chains.scanning import ChainTransfer, SenderKind
from kassa.deposits.addresses import match_key as deposits_match_key
from kassa_dev.devkeys import dev_private_key
from kassa_dev.devnet import bitcoin as devbtc
from kassa_dev.devnet.testing import BitcoinNode, free_port

NET = BtcNetwork.REGTEST
MNEMONIC = "abandon " * 11 + "about"
FEE_RATE = 2_000  # sat per 1000 vB
HALVING_INTERVAL = 150  # regtest


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Key:
    private: coincurve.PrivateKey

    @property
    def address(self) -> str:
        return p2wpkh_address_for_key(self.private, NET).text

    @property
    def script(self) -> bytes:
        return p2wpkh_address_for_key(self.private, NET).script_pubkey


FAUCET = Key(coincurve.PrivateKey(devbtc.faucet_key().private_key))


def new_address() -> str:
    return Key(coincurve.PrivateKey()).address


def broadcast(node: BitcoinNode, tx: Transaction) -> str:
    return node.rpc().send_raw_transaction(tx.serialize())


def mine(node: BitcoinNode, blocks: int = 1, to: str | None = None) -> list[str]:
    return node.rpc().generate(blocks, to or FAUCET.address)


def faucet_pays(node: BitcoinNode, outputs: Sequence[tuple[str, int]]) -> Transaction:
    """A signed, broadcast (unmined) faucet transaction: `outputs` in order, then change."""
    rpc = node.rpc()
    tip = rpc.height()
    # The oldest coins first: they stay mature even if a test invalidates a few blocks.
    coins = sorted(
        (c for c in rpc.utxos(FAUCET.address) if c.spendable_at(tip)), key=lambda c: c.height
    )
    scripts = [parse_btc_address(a, NET).script_pubkey for a, _ in outputs]
    wanted = sum(amount for _, amount in outputs)
    chosen: list[Coin] = []
    for utxo in coins:
        chosen.append(Coin(OutPoint(utxo.txid, utxo.vout), utxo.value, utxo.script_pubkey))
        fee = fee_for_vsize(estimate_vsize(len(chosen), [*scripts, FAUCET.script]), FEE_RATE)
        if sum(c.amount for c in chosen) >= wanted + fee + 1_000:
            break
    else:  # pragma: no cover - the node mines 150 blocks to the faucet at start
        raise AssertionError("the faucet is empty")
    change = sum(c.amount for c in chosen) - wanted - fee
    tx_outputs = [
        TxOut(amount, script) for (_, amount), script in zip(outputs, scripts, strict=True)
    ]
    signed = build_transaction(chosen, [*tx_outputs, TxOut(change, FAUCET.script)]).sign(
        [FAUCET.private] * len(chosen)
    )
    broadcast(node, signed)
    return signed


def spend(node: BitcoinNode, coins: Sequence[tuple[Coin, Key]], to: str, amount: int) -> str:
    """Spend `coins` (each with its key) to one output; the rest is fee. Broadcast, unmined."""
    unsigned = build_transaction(
        [c for c, _ in coins], [TxOut(amount, parse_btc_address(to, NET).script_pubkey)]
    )
    return broadcast(node, unsigned.sign([k.private for _, k in coins]))


def coin_of(tx: Transaction, vout: int) -> Coin:
    output = tx.outputs[vout]
    return Coin(OutPoint(tx.txid, vout), output.amount, output.script_pubkey)


@pytest.fixture
def rpc(bitcoin_node: BitcoinNode) -> Iterator[BtcRpc]:
    with BtcRpc(bitcoin_node.url, bitcoin_node.api_key) as client:
        yield client


@pytest.fixture
def scanner(rpc: BtcRpc) -> BtcScanner:
    return BtcScanner(rpc, NET, confirmations=3)


def tip_height(scanner: BtcScanner) -> int:
    return scanner.head().height


# --------------------------------------------------------------------------- head and hashes


def test_head_final_height_and_block_hashes(bitcoin_node: BitcoinNode, scanner: BtcScanner) -> None:
    mine(bitcoin_node)
    head = scanner.head()
    assert head.height == bitcoin_node.rpc().height()
    assert head.hash == bitcoin_node.rpc().call("getbestblockhash")
    assert head.final_height == head.height - 2  # 3 confirmations: tip-2, tip-1, tip
    assert scanner.block_hash(head.height) == head.hash
    assert (
        scanner.block_hash(head.height - 1) == scanner.block(head.height, frozenset()).parent_hash
    )
    assert scanner.block_hash(head.height + 1) is None  # bcoin answers -8 "out of range"
    assert scanner.block_hash(-1) is None
    with pytest.raises(BlockNotFound):
        scanner.block(head.height + 1, frozenset())


def test_block_time_is_the_header_time(bitcoin_node: BitcoinNode, scanner: BtcScanner) -> None:
    [block_hash] = mine(bitcoin_node)
    header = bitcoin_node.rpc().call("getblockheader", block_hash, True)
    block = scanner.block(int(header["height"]), frozenset())
    assert block.hash == block_hash
    assert int(block.time.timestamp()) == int(header["time"])
    assert block.time.tzinfo is not None


# --------------------------------------------------------------------------- transfers


def test_two_outputs_to_watched_addresses_are_two_exact_transfers(
    bitcoin_node: BitcoinNode, scanner: BtcScanner
) -> None:
    first, second = new_address(), new_address()
    tx = faucet_pays(bitcoin_node, [(first, 12_345_678), (second, 99_999)])
    mine(bitcoin_node)
    block = scanner.block(tip_height(scanner), frozenset({first, second}))
    common = {
        "chain": Chain.BTC,
        "asset": "BTC",
        "txid": tx.txid,
        "sender": FAUCET.address,  # every input is a faucet coin: one known origin
        "sender_kind": SenderKind.KNOWN,
        "success": True,
    }
    assert [t for t in block.transfers if t.txid == tx.txid] == [
        ChainTransfer(position=0, to_address=first, amount=12_345_678, **common),  # type: ignore[arg-type]
        ChainTransfer(position=1, to_address=second, amount=99_999, **common),  # type: ignore[arg-type]
        # The change (output 2) pays an address nobody watches: not decoded, not reported.
    ]


def test_the_match_key_rule_is_the_watchers(bitcoin_node: BitcoinNode, scanner: BtcScanner) -> None:
    # kassa.chains may not import kassa.deposits, so the scanner repeats the rule: keep them equal.
    legacy = "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"
    for text in (FAUCET.address, FAUCET.address.upper(), legacy):
        assert match_key(text) == deposits_match_key(Chain.BTC, text)
    address = new_address()
    tx = faucet_pays(bitcoin_node, [(address, 50_000)])
    mine(bitcoin_node)
    # Bech32 is case-insensitive: an address given in upper case is watched all the same.
    watched = frozenset({deposits_match_key(Chain.BTC, address.upper())})
    block = scanner.block(tip_height(scanner), watched)
    [paid] = [t for t in block.transfers if t.txid == tx.txid and t.position == 0]
    assert (paid.to_address, paid.sender) == (address, FAUCET.address)


def test_sender_known_for_one_address_and_ambiguous_for_two(
    bitcoin_node: BitcoinNode, scanner: BtcScanner
) -> None:
    alice = Key(dev_private_key(MNEMONIC, NET, 900))
    bob = Key(dev_private_key(MNEMONIC, NET, 901))
    funding = faucet_pays(
        bitcoin_node,
        [*[(alice.address, 40_000)] * 3, (bob.address, 40_000)],
    )
    mine(bitcoin_node)
    one_origin, two_origins = new_address(), new_address()
    # Two inputs, both Alice's: one origin. One of Alice's and one of Bob's: no single origin.
    known = spend(
        bitcoin_node,
        [(coin_of(funding, 0), alice), (coin_of(funding, 1), alice)],
        one_origin,
        70_000,
    )
    ambiguous = spend(
        bitcoin_node,
        [(coin_of(funding, 2), alice), (coin_of(funding, 3), bob)],
        two_origins,
        70_000,
    )
    mine(bitcoin_node)
    block = scanner.block(tip_height(scanner), frozenset({one_origin, two_origins}))
    by_txid = {t.txid: t for t in block.transfers}
    assert by_txid[known] == ChainTransfer(
        chain=Chain.BTC,
        asset="BTC",
        txid=known,
        position=0,
        to_address=one_origin,
        amount=70_000,
        sender=alice.address,
        sender_kind=SenderKind.KNOWN,
        success=True,
    )
    assert by_txid[ambiguous].sender is None
    assert by_txid[ambiguous].sender_kind is SenderKind.AMBIGUOUS
    assert (by_txid[ambiguous].amount, by_txid[ambiguous].to_address) == (70_000, two_origins)


def test_unwatched_outputs_are_not_reported(bitcoin_node: BitcoinNode, scanner: BtcScanner) -> None:
    address = new_address()
    tx = faucet_pays(bitcoin_node, [(address, 30_000)])
    mine(bitcoin_node)
    # Nobody watches it: no transfer, and so no sender lookup either.
    unwatched = scanner.block(tip_height(scanner), frozenset())
    assert tx.txid not in {t.txid for t in unwatched.transfers}
    [paid] = scanner.block(tip_height(scanner), frozenset({address})).transfers
    assert (paid.txid, paid.to_address, paid.amount) == (tx.txid, address, 30_000)
    assert (paid.sender, paid.sender_kind) == (FAUCET.address, SenderKind.KNOWN)


def test_a_coinbase_output_has_no_sender(bitcoin_node: BitcoinNode, scanner: BtcScanner) -> None:
    miner = new_address()
    [block_hash] = mine(bitcoin_node, to=miner)
    height = tip_height(scanner)
    block = scanner.block(height, frozenset({miner}))
    assert block.hash == block_hash
    [coinbase] = block.transfers  # no other transaction, no fees; the witness commitment
    # output is an OP_RETURN without an address, so it is not a transfer
    assert coinbase.to_address == miner and coinbase.position == 0
    assert coinbase.amount == (50 * 100_000_000) >> (height // HALVING_INTERVAL)
    assert (coinbase.sender, coinbase.sender_kind) == (None, SenderKind.AMBIGUOUS)


def test_invalidateblock_replaces_the_block_and_rebroadcast_reincludes(
    bitcoin_node: BitcoinNode, scanner: BtcScanner
) -> None:
    watched = new_address()
    tx = faucet_pays(bitcoin_node, [(watched, 77_777)])
    [original] = mine(bitcoin_node)
    height = tip_height(scanner)
    assert tx.txid in {t.txid for t in scanner.block(height, frozenset({watched})).transfers}

    bitcoin_node.rpc().call("invalidateblock", original)
    assert scanner.head().height == height - 1
    assert scanner.block_hash(height) is None
    # The competing block pays someone else, so it cannot be the same block again.
    [replacement] = mine(bitcoin_node, to=new_address())
    assert scanner.block_hash(height) == replacement != original
    assert tx.txid not in {t.txid for t in scanner.block(height, frozenset({watched})).transfers}

    # bcoin wipes its mempool on invalidateblock (Core would keep the transactions): resend.
    assert broadcast(bitcoin_node, tx) == tx.txid
    mine(bitcoin_node)
    again = [
        t for t in scanner.block(height + 1, frozenset({watched})).transfers if t.txid == tx.txid
    ]
    assert [(t.position, t.amount) for t in again] == [(0, 77_777)]


# --------------------------------------------------------------------------- fees


def test_fee_rate_falls_back_on_regtest(scanner: BtcScanner) -> None:
    # bcoin answers estimatesmartfee with fee -1 on a chain without fee history.
    assert scanner.fee_rate() == FeeEstimate(10_000, FeeSource.FALLBACK, 6)
    fixed = BtcScanner(scanner.rpc, NET, confirmations=1, fallback_fee_rate=3_000)
    assert fixed.fee_rate(2) == FeeEstimate(3_000, FeeSource.FALLBACK, 2)


def test_fallback_fee_rate_below_the_relay_floor_is_refused(rpc: BtcRpc) -> None:
    with pytest.raises(ValueError, match="at least 1000"):
        BtcScanner(rpc, NET, confirmations=1, fallback_fee_rate=999)
    with pytest.raises(ValueError, match="confirmations"):
        BtcScanner(rpc, NET, confirmations=0)


# --------------------------------------------------------------------------- RPC errors


def test_a_wrong_api_key_is_a_transport_error(bitcoin_node: BitcoinNode) -> None:
    with (
        BtcRpc(bitcoin_node.url, "not-the-key") as bad,
        pytest.raises(RpcTransportError, match=r"HTTP 401.*wrong API key"),
    ):
        bad.call("getblockcount")


def test_a_node_error_keeps_its_code_and_message(rpc: BtcRpc) -> None:
    with pytest.raises(RpcError) as caught:
        rpc.get_raw_transaction("00" * 32)
    assert caught.value.method == "getrawtransaction"
    assert caught.value.message == "Transaction not found."
    with pytest.raises(RpcError) as unknown:
        rpc.call("scantxoutset", "start", [])  # bcoin lacks it
    assert unknown.value.code == -32601


def test_an_unreachable_node_is_a_transport_error() -> None:
    with (
        BtcRpc(f"http://127.0.0.1:{free_port()}", "k", timeout=2) as dead,
        pytest.raises(RpcTransportError, match="ConnectError"),
    ):
        dead.call("getblockcount")


# --------------------------------------------------------------------------- Core-shaped answers


def core(answers: dict[str, tuple[int, bytes]]) -> BtcRpc:
    """A BtcRpc whose node answers each method with (HTTP status, body), as Core would."""

    def handle(request: httpx.Request) -> httpx.Response:
        status, body = answers[json.loads(request.content)["method"]]
        return httpx.Response(status, content=body)

    return BtcRpc("http://core.invalid:8332", "k", transport=httpx.MockTransport(handle))


def test_a_core_fee_estimate_becomes_exact_sat_per_kvb() -> None:
    # Core prints amounts with 8 decimals; 0.00012345 BTC/kvB is 12 345 sat/kvB exactly.
    raw = b'{"result": {"feerate": 0.00012345, "blocks": 2}, "error": null, "id": 1}'
    scanner = BtcScanner(core({"estimatesmartfee": (200, raw)}), NET, confirmations=1)
    assert scanner.fee_rate(2) == FeeEstimate(12_345, FeeSource.NODE, 2)
    tiny = b'{"result": {"feerate": 0.0000050, "blocks": 2}, "error": null, "id": 1}'
    scanner = BtcScanner(core({"estimatesmartfee": (200, tiny)}), NET, confirmations=1)
    assert scanner.fee_rate(2) == FeeEstimate(1_000, FeeSource.NODE, 2)  # the relay floor
    none = b'{"result": {"errors": ["Insufficient data"], "blocks": 0}, "error": null, "id": 1}'
    scanner = BtcScanner(core({"estimatesmartfee": (200, none)}), NET, confirmations=1)
    assert scanner.fee_rate(2).source is FeeSource.FALLBACK


def test_core_http_500_errors_are_rpc_errors() -> None:
    body = (
        b'{"result": null, "error": {"code": -8, "message": "Block height out of range"}, "id": 1}'
    )
    scanner = BtcScanner(core({"getblockhash": (500, body)}), NET, confirmations=1)
    assert scanner.block_hash(10**6) is None
    other = (
        b'{"result": null, "error": {"code": -28, "message": "Loading block index..."}, "id": 1}'
    )
    scanner = BtcScanner(core({"getblockhash": (500, other)}), NET, confirmations=1)
    with pytest.raises(RpcError, match="Loading block index") as caught:
        scanner.block_hash(1)
    assert caught.value.code == -28


def test_core_v22_address_field_and_outputs_without_one_address() -> None:
    # Core >= 22 prints one `address` (no `addresses`), and no address for bare multisig.
    block = b"""{"result": {"hash": "%(h)s", "height": 7, "time": 1700000000,
        "previousblockhash": "%(p)s", "tx": [{"txid": "%(t)s", "vin": [{"coinbase": "00"}],
        "vout": [
          {"value": 0.10000000, "n": 0, "scriptPubKey": {"address": "%(a)s"}},
          {"value": 0.00000001, "n": 1, "scriptPubKey": {"type": "multisig"}},
          {"value": 0.00000330, "n": 2, "scriptPubKey": {"addresses": ["%(a)s", "%(a)s"]}},
          {"value": 0.00000000, "n": 3, "scriptPubKey": {"type": "nulldata"}}]}]},
        "error": null, "id": 1}""" % {
        b"h": b"11" * 32,
        b"p": b"22" * 32,
        b"t": b"33" * 32,
        b"a": b"BCRT1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KYGT080",
    }
    answers = {
        "getblockhash": (200, b'{"result": "%s", "error": null, "id": 1}' % (b"11" * 32)),
        "getblock": (200, block),
    }
    watched = frozenset({"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"})
    [paid] = BtcScanner(core(answers), NET, confirmations=1).block(7, watched).transfers
    expected = ("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 10_000_000, 0)
    assert (paid.to_address, paid.amount, paid.position) == expected


def test_amounts_are_exact_or_refused() -> None:
    assert satoshi(Decimal("0.12345678")) == 12_345_678
    assert satoshi(Decimal("1e-8")) == 1
    assert satoshi(25) == 2_500_000_000
    assert satoshi(Decimal("20999999.97690000")) == 2_099_999_997_690_000
    with pytest.raises(UnexpectedResponse, match="not a whole number of satoshi"):
        satoshi(Decimal("0.000000001"))
    with pytest.raises(UnexpectedResponse, match="decimal number"):
        satoshi(0.1)
    with pytest.raises(UnexpectedResponse, match="decimal number"):
        satoshi(True)
