"""The scanners decode only what pays a watched address: edge cases of those fast paths.

Each node here is a stand-in answering in the node's printed JSON shapes through httpx's
`MockTransport` (a stand-in *node*, not a stand-in for Kassa code), which also counts the HTTP
requests, so batching (one round trip for several lookups) is checked, not assumed. The real
nodes' side of the same paths is in test_btc_scanner, test_eth_scanner and test_tron_scanner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from kassa.chains.btc.rpc import BtcRpc
from kassa.chains.btc.scanner import BtcScanner
from kassa.chains.eth.address import checksum_encode
from kassa.chains.eth.rpc import EthRpc
from kassa.chains.eth.scanner import TRANSFER_TOPIC, EthScanner
from kassa.chains.network import BtcNetwork
from kassa.chains.scanning import NATIVE_POSITION, SenderKind
from kassa.chains.tron.address import TronAddress
from kassa.chains.tron.api import TronApi, TronUnexpectedAnswer
from kassa.chains.tron.scanner import TRANSFER_EVENT_TOPIC, TronScanner

Answer = Callable[[str, list[Any]], Any]


def dumps(answer: object) -> str:
    """JSON with each `Decimal` written as the exact number a node prints (BTC amounts)."""
    text = json.dumps(answer, default=lambda d: f"<{d}>" if isinstance(d, Decimal) else None)
    return re.sub(r'"<([0-9.Ee+-]+)>"', r"\1", text)


class StandIn:
    """A JSON-RPC node: ``answer(method, params)`` gives each result; batches are answered
    as arrays unless ``batches`` is False (then an array gets one error object, as some
    providers do). ``posts`` counts HTTP requests, ``methods`` the calls in them."""

    def __init__(self, answer: Answer, *, batches: bool = True) -> None:
        self.answer = answer
        self.batches = batches
        self.refusal = "error"
        self.posts = 0
        self.methods: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.posts += 1
        body = json.loads(request.content, parse_float=Decimal)
        if isinstance(body, list):
            if not self.batches:
                if self.refusal == "html":
                    return httpx.Response(400, text="<html>400 Bad Request</html>")
                error = {"code": -32600, "message": "batch requests are not supported"}
                return httpx.Response(200, json={"id": None, "result": None, "error": error})
            return httpx.Response(200, content=dumps([self._one(c) for c in body]))
        return httpx.Response(200, content=dumps(self._one(body)))

    def _one(self, call: dict[str, Any]) -> dict[str, Any]:
        self.methods.append(call["method"])
        result = self.answer(call["method"], call["params"])
        return {"jsonrpc": "2.0", "id": call["id"], "result": result, "error": None}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


# --------------------------------------------------------------------------- Bitcoin

NET = BtcNetwork.REGTEST
WATCHED = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
OTHER = "bcrt1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qzf4jry"
PAYER = "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"
BLOCK_HASH = "11" * 32
PREV = ["a1" * 32, "a2" * 32, "a3" * 32]


def out(n: int, value: str, script: dict[str, Any]) -> dict[str, Any]:
    return {"n": n, "value": Decimal(value), "scriptPubKey": script}


def btc_tx(txid: str, vin: list[dict[str, Any]], vout: list[dict[str, Any]]) -> dict[str, Any]:
    return {"txid": txid, "vin": vin, "vout": vout}


def btc_node(txs: list[dict[str, Any]], prevs: dict[str, dict[str, Any]]) -> StandIn:
    def answer(method: str, params: list[Any]) -> Any:
        if method == "getblockhash":
            return BLOCK_HASH
        if method == "getblock":
            return {
                "hash": BLOCK_HASH,
                "height": 7,
                "time": 1_700_000_000,
                "previousblockhash": "22" * 32,
                "tx": txs,
            }
        assert method == "getrawtransaction", method
        return prevs[params[0]]

    return StandIn(answer)


def payer_tx(txid: str) -> dict[str, Any]:
    return btc_tx(txid, [{"txid": "ff" * 32, "vout": 0}], [out(0, "1", {"address": PAYER})])


def btc_scan(node: StandIn, watched: set[str]) -> list[tuple[Any, ...]]:
    rpc = BtcRpc("http://core.invalid:8332", "k", transport=node.transport())
    block = BtcScanner(rpc, NET, confirmations=1).block(7, frozenset(watched))
    return [(t.txid[:4], t.position, t.to_address, t.amount, t.sender) for t in block.transfers]


def test_btc_reports_only_watched_outputs_each_one_even_to_the_same_address() -> None:
    pays = btc_tx(
        "bb" * 32,
        [{"txid": PREV[0], "vout": 0}],
        [
            out(0, "0.1", {"address": WATCHED}),
            out(1, "0.2", {"address": OTHER}),  # unwatched: not reported
            out(2, "0.3", {"addresses": [WATCHED]}),  # bcoin's spelling
            out(3, "0.4", {"addresses": [WATCHED, OTHER]}),  # bare multisig: no single owner
            out(4, "0", {"type": "nulldata"}),
            out(5, "0.5", {"address": WATCHED.upper()}),  # bech32 in upper case is legal
        ],
    )
    node = btc_node([pays], {PREV[0]: payer_tx(PREV[0])})
    assert btc_scan(node, {WATCHED}) == [
        ("bbbb", 0, WATCHED, 10_000_000, PAYER),
        ("bbbb", 2, WATCHED, 30_000_000, PAYER),
        ("bbbb", 5, WATCHED, 50_000_000, PAYER),
    ]


def test_btc_senders_come_from_the_block_or_one_batch_of_lookups() -> None:
    # tx 1 spends tx 0 of the same block (no lookup); txs 2 and 3 spend two outside
    # transactions (one batch of two lookups); tx 4 spends two addresses (ambiguous).
    inside = payer_tx("c0" * 32)
    txs = [
        inside,
        btc_tx("c1" * 32, [{"txid": "c0" * 32, "vout": 0}], [out(0, "0.1", {"address": WATCHED})]),
        btc_tx("c2" * 32, [{"txid": PREV[0], "vout": 0}], [out(0, "0.2", {"address": WATCHED})]),
        btc_tx("c3" * 32, [{"txid": PREV[1], "vout": 1}], [out(0, "0.3", {"address": WATCHED})]),
        btc_tx(
            "c4" * 32,
            [{"txid": PREV[0], "vout": 0}, {"txid": PREV[2], "vout": 0}],
            [out(0, "0.4", {"address": WATCHED})],
        ),
        btc_tx("c5" * 32, [{"coinbase": "00"}], [out(0, "0.5", {"address": OTHER})]),
    ]
    other_payer = btc_tx(
        PREV[1],
        [{"coinbase": "00"}],
        [out(0, "1", {"type": "nulldata"}), out(1, "1", {"address": OTHER})],
    )
    prevs = {
        PREV[0]: payer_tx(PREV[0]),
        PREV[1]: other_payer,
        PREV[2]: btc_tx(PREV[2], [], [out(0, "1", {"address": OTHER})]),
    }
    node = btc_node(txs, prevs)
    assert btc_scan(node, {WATCHED}) == [
        ("c1c1", 0, WATCHED, 10_000_000, PAYER),
        ("c2c2", 0, WATCHED, 20_000_000, PAYER),
        ("c3c3", 0, WATCHED, 30_000_000, OTHER),
        ("c4c4", 0, WATCHED, 40_000_000, None),
    ]
    # getblockhash, getblock, and one batch of the three outside transactions.
    assert node.posts == 3
    assert sorted(node.methods).count("getrawtransaction") == 3


@pytest.mark.parametrize("refusal", ["error", "html"])
def test_btc_a_node_without_batches_gets_the_lookups_one_by_one(refusal: str) -> None:
    txs = [
        btc_tx("d1" * 32, [{"txid": PREV[0], "vout": 0}], [out(0, "0.1", {"address": WATCHED})]),
        btc_tx("d2" * 32, [{"txid": PREV[1], "vout": 0}], [out(0, "0.2", {"address": WATCHED})]),
    ]
    node = btc_node(txs, {PREV[0]: payer_tx(PREV[0]), PREV[1]: payer_tx(PREV[1])})
    node.batches, node.refusal = False, refusal
    rpc = BtcRpc("http://core.invalid:8332", "k", transport=node.transport())
    scanner = BtcScanner(rpc, NET, confirmations=1)
    paid = scanner.block(7, frozenset({WATCHED})).transfers
    assert [(t.amount, t.sender, t.sender_kind) for t in paid] == [
        (10_000_000, PAYER, SenderKind.KNOWN),
        (20_000_000, PAYER, SenderKind.KNOWN),
    ]
    # The refused batch, then each lookup alone; and from then on no batch is tried.
    assert node.posts == 2 + 1 + 2
    BtcScanner(rpc, NET, confirmations=1).block(7, frozenset({WATCHED}))  # a cold cache
    assert node.posts == 5 + 2 + 2


def test_btc_a_malformed_watched_output_is_refused() -> None:
    pays = btc_tx("ee" * 32, [{"coinbase": "00"}], [out(0, "0.000000001", {"address": WATCHED})])
    with pytest.raises(Exception, match="not a whole number of satoshi"):
        btc_scan(btc_node([pays], {}), {WATCHED})


# --------------------------------------------------------------------------- Ethereum

ETH_USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
ETH_HASH = "0x" + "ab" * 32
ALICE_ETH = "0x" + "aa" * 20
BOB_ETH = "0x" + "bb" * 20
CAROL_ETH = "0x" + "cc" * 20


def topic(address: str, high: str = "00" * 12) -> str:
    return "0x" + high + address[2:]


def eth_log(txid: str, index: int, topics: list[str], data: int, contract: str) -> dict[str, Any]:
    return {
        "blockHash": ETH_HASH,
        "transactionHash": txid,
        "logIndex": hex(index),
        "address": contract,
        "topics": topics,
        "data": "0x" + data.to_bytes(32, "big").hex(),
    }


def test_eth_decodes_only_watched_recipients_with_every_defence() -> None:
    t = ["0x" + f"{n:064x}" for n in range(1, 8)]
    transfer = [TRANSFER_TOPIC, topic(ALICE_ETH)]
    logs = [
        eth_log(t[0], 0, [*transfer, topic(BOB_ETH)], 5, ETH_USDT),  # canonical, watched
        eth_log(t[1], 1, [*transfer, topic(CAROL_ETH)], 6, ETH_USDT),  # not watched
        eth_log(t[2], 2, [*transfer, topic(BOB_ETH), topic(BOB_ETH)], 7, ETH_USDT),  # ERC-721
        eth_log(t[3], 3, [*transfer, topic(BOB_ETH, "11" * 12)], 8, ETH_USDT),  # not an address
        eth_log(t[4], 4, [*transfer, topic(BOB_ETH)], 9, "0x" + "99" * 20),  # another token
    ]
    native = [
        {"hash": t[5], "from": ALICE_ETH, "to": BOB_ETH, "value": "0x10"},  # failed
        {"hash": t[6], "from": ALICE_ETH, "to": CAROL_ETH, "value": "0x20"},  # not watched
        {"hash": "0x" + "ee" * 32, "from": ALICE_ETH, "to": None, "value": "0x1"},  # creation
        {"hash": "0x" + "ef" * 32, "from": ALICE_ETH, "to": BOB_ETH.upper(), "value": "0x0"},
    ]

    def answer(method: str, params: list[Any]) -> Any:
        if method == "eth_getBlockByNumber":
            return {
                "number": "0x9",
                "hash": ETH_HASH,
                "parentHash": "0x" + "cd" * 32,
                "timestamp": "0x64",
                "transactions": native,
            }
        if method == "eth_getLogs":
            return list(reversed(logs))  # out of order: sorted by logIndex
        assert method == "eth_getTransactionReceipt" and params == [t[5]]
        return {"blockHash": ETH_HASH, "status": "0x0"}

    node = StandIn(answer)
    rpc = EthRpc("http://node.invalid", transport=node.transport())
    scanner = EthScanner(rpc, usdt_contract=ETH_USDT, confirmations=1)
    block = scanner.block(9, frozenset({BOB_ETH}))
    bob = checksum_encode(bytes.fromhex(BOB_ETH[2:]))
    assert [
        (t.txid, t.position, t.to_address, t.amount, t.success, t.canonical)
        for t in block.transfers
    ] == [
        (t[5], NATIVE_POSITION, bob, 16, False, True),
        (t[0], 0, bob, 5, True, True),
        (t[4], 0, bob, 9, True, False),
    ]
    assert node.posts == 2  # block and logs in one batch, then the receipt


# --------------------------------------------------------------------------- TRON

TRON_USDT = TronAddress.from_bytes(bytes(range(1, 21)))
ALICE = TronAddress.from_bytes(b"\xaa" * 20)
BOB = TronAddress.from_bytes(b"\xbb" * 20)
CAROL = TronAddress.from_bytes(b"\xcc" * 20)
TIMESTAMP_MS = 1_790_000_000_123


def word(value: int | TronAddress) -> str:
    if isinstance(value, TronAddress):
        return (bytes(12) + value.evm_bytes).hex()
    return value.to_bytes(32, "big").hex()


def trx(txid: str, to: str) -> dict[str, Any]:
    value = {"owner_address": ALICE.text, "to_address": to, "amount": 3}
    contract = {"type": "TransferContract", "parameter": {"value": value}}
    return {"ret": [{"contractRet": "SUCCESS"}], "txID": txid, "raw_data": {"contract": [contract]}}


def call(txid: str, to: TronAddress, ret: str) -> dict[str, Any]:
    data = "a9059cbb" + word(to) + word(4)
    value = {"owner_address": ALICE.text, "contract_address": TRON_USDT.text, "data": data}
    contract = {"type": "TriggerSmartContract", "parameter": {"value": value}}
    return {"ret": [{"contractRet": ret}], "txID": txid, "raw_data": {"contract": [contract]}}


def info(txid: str, result: str, logs: list[dict[str, Any]]) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": txid,
        "blockNumber": 1000,
        "blockTimeStamp": TIMESTAMP_MS,
        "receipt": {"result": result},
        "log": logs,
    }
    if result != "SUCCESS":
        answer["result"] = "FAILED"
    return answer


def tron_scan(txs: list[dict[str, Any]], infos: list[dict[str, Any]], watched: set[str]) -> Any:
    block = {
        "blockID": "00000000000003e8" + "ab" * 24,
        "block_header": {
            "raw_data": {"number": 1000, "parentHash": "cd" * 32, "timestamp": TIMESTAMP_MS}
        },
        "transactions": txs,
    }

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/wallet/getblockbynum":
            return httpx.Response(200, json=block)
        return httpx.Response(200, json=infos)

    api = TronApi("http://tron.invalid", transport=httpx.MockTransport(handle))
    return TronScanner(api, usdt_contract=TRON_USDT.text).block(1000, frozenset(watched))


def test_tron_decodes_only_watched_transfers_logs_and_failed_calls() -> None:
    t = [f"{n:064x}" for n in range(1, 9)]
    transfer = [TRANSFER_EVENT_TOPIC.hex(), word(ALICE)]
    txs = [
        trx(t[0], BOB.text),
        trx(t[1], CAROL.text),
        trx(t[2], BOB.hex),  # the hex form java-tron prints without `visible`
        call(t[3], BOB, "SUCCESS"),
        call(t[4], CAROL, "SUCCESS"),
        call(t[5], BOB, "REVERT"),  # failed, no log: reported from its call data
        call(t[6], CAROL, "REVERT"),  # failed, to somebody else
        call(t[7], BOB, "SUCCESS"),
    ]
    infos = [
        info(
            t[3],
            "SUCCESS",
            [{"address": TRON_USDT.text, "topics": [*transfer, word(BOB)], "data": word(5)}],
        ),
        info(
            t[4],
            "SUCCESS",
            [{"address": TRON_USDT.text, "topics": [*transfer, word(CAROL)], "data": word(6)}],
        ),
        info(t[5], "REVERT", []),
        info(t[6], "REVERT", []),
        # Extra topics (ERC-721 style): not a TRC-20 transfer even to a watched address.
        info(
            t[7],
            "SUCCESS",
            [{"address": TRON_USDT.text, "topics": [*transfer, word(BOB), word(1)], "data": ""}],
        ),
    ]
    block = tron_scan(txs, infos, {BOB.text})
    assert [(x.txid, x.position, x.to_address, x.amount, x.success) for x in block.transfers] == [
        (t[0], NATIVE_POSITION, BOB.text, 3, True),
        (t[2], NATIVE_POSITION, BOB.text, 3, True),
        (t[3], 0, BOB.text, 5, True),
        (t[5], 0, BOB.text, 4, False),
    ]


def test_tron_a_malformed_transfer_is_refused_even_unwatched() -> None:
    bad = trx("01" * 32, CAROL.text)
    bad["raw_data"]["contract"][0]["parameter"]["value"]["to_address"] = 12
    with pytest.raises(TronUnexpectedAnswer, match="to_address"):
        tron_scan([bad], [], {BOB.text})
