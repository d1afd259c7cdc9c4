"""The TRON scanner against Kassa's java-tron simulator: real HTTP, real signed transactions.

The `tron_sim` node is shared by the whole session and produces a block every 0.5 s, so the
tests never assume block numbers: each finds where its own transactions were mined by asking the
node (``gettransactioninfobyid``) and compares the scanner's report with that.

The last group feeds the client hand-written answers in java-tron's printed shapes through
httpx's `MockTransport` (a stand-in *node*, not a stand-in for Kassa code), for what the
simulator cannot produce: other contracts' logs, base58 log addresses (what a real node prints
with ``visible``), malformed answers, a block changing between two requests.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import coincurve
import httpx
import pytest
from tronpy import Tron
from tronpy.contract import Contract
from tronpy.keys import PrivateKey
from tronpy.providers import HTTPProvider

from kassa.chains.network import Chain, TronNetwork
from kassa.chains.scanning import NATIVE_POSITION, ChainTransfer, SenderKind
from kassa.chains.tron.address import TronAddress, tron_address_for_public_key
from kassa.chains.tron.api import (
    TronApi,
    TronNodeError,
    TronTransportError,
    TronUnexpectedAnswer,
)
from kassa.chains.tron.scanner import (
    TRANSFER_EVENT_TOPIC,
    SoliditySource,
    TronBlockNotFound,
    TronChainMoved,
    TronScanner,
)
from kassa.money import TRX, USDT_TRC20, Money
from kassa_dev.devkeys import dev_private_key
from kassa_dev.devnet.testing import TronNode, free_port
from kassa_dev.devnet.tron import DEFAULT_GENESIS_KEY_HEX

MNEMONIC = "abandon " * 11 + "about"
TRC20_FEE_LIMIT = 30_000_000
GENESIS_SECRET = bytes.fromhex(DEFAULT_GENESIS_KEY_HEX)
TRANSFER_ABI: list[dict[str, Any]] = [
    {
        "name": "transfer",
        "type": "function",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]


# ------------------------------------------------------------------------------ node helpers


def node(sim: TronNode, path: str, body: dict[str, Any] | None = None) -> Any:
    """A raw request to the simulator, for the facts the scanner's answers are checked against."""
    response = httpx.post(f"{sim.url}/{path}", json=body or {}, timeout=10.0)
    response.raise_for_status()
    return response.json()


def mined_in(sim: TronNode, txid: str) -> dict[str, Any]:
    """The node's receipt of `txid` (``blockNumber``, ``blockTimeStamp``, ``receipt``…)."""
    info: dict[str, Any] = node(sim, "wallet/gettransactioninfobyid", {"value": txid})
    assert "blockNumber" in info, f"{txid} is not in a block"
    return info


def block_txids(sim: TronNode, height: int) -> list[str]:
    block = node(sim, "wallet/getblockbynum", {"num": height})
    return [tx["txID"] for tx in block.get("transactions", [])]


def solid_block_id(sim: TronNode) -> str:
    return str(node(sim, "wallet/getnodeinfo")["solidityBlock"]).split("ID:", 1)[1]


def broadcast(sim: TronNode, signed: dict[str, Any]) -> str:
    answer = node(sim, "wallet/broadcasttransaction", signed)
    assert answer.get("result") is True, answer
    return str(signed["txID"])


def just_after_a_block(sim: TronNode) -> None:
    start = node(sim, "debug/info")["head"]
    deadline = time.monotonic() + 5
    while node(sim, "debug/info")["head"] == start:
        assert time.monotonic() < deadline, "the simulator's block timer stopped"
        time.sleep(0.005)


def mine(sim: TronNode, blocks: int = 1) -> None:
    node(sim, "debug/mine", {"blocks": blocks})


def fresh_address() -> str:
    """An address nobody else in the session pays."""
    public = coincurve.PrivateKey().public_key.format(compressed=False)
    return tron_address_for_public_key(public).text


def _offline_tron() -> Any:
    # Offline builds never call the provider; a dead loopback URL makes sure of it (tronpy's
    # default is a public endpoint).
    return Tron(provider=HTTPProvider(f"http://127.0.0.1:{free_port()}"))


def signed_trx_transfer(secret: bytes, to: str, sun: int, ref_block_id: str) -> dict[str, Any]:
    """A TRX transfer from `secret`'s account, built and signed offline with tronpy (untyped,
    so its objects stay inside these helpers)."""
    key = PrivateKey(secret)
    owner = key.public_key.to_base58check_address()
    builder = _offline_tron().trx.transfer(owner, to, sun)
    return dict(builder.build(offline=True, ref_block_id=ref_block_id).sign(key).to_json())


def signed_trc20_transfer(
    secret: bytes, contract: str, to: str, amount: int, ref_block_id: str
) -> dict[str, Any]:
    """`transfer(to, amount)` on `contract` from `secret`'s account, offline with tronpy."""
    key = PrivateKey(secret)
    owner = key.public_key.to_base58check_address()
    token = Contract(addr=contract, abi=TRANSFER_ABI, client=_offline_tron())
    builder = token.functions.transfer(to, amount).with_owner(owner).fee_limit(TRC20_FEE_LIMIT)
    return dict(builder.build(offline=True, ref_block_id=ref_block_id).sign(key).to_json())


def block_time(timestamp_ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=timestamp_ms)


@pytest.fixture
def api(tron_sim: TronNode) -> Iterator[TronApi]:
    with TronApi(tron_sim.url) as client:
        yield client


@pytest.fixture
def scanner(api: TronApi, tron_sim: TronNode) -> TronScanner:
    return TronScanner(api, usdt_contract=tron_sim.usdt_contract)


# ------------------------------------------------------------------------------ transfers


def test_trx_transfer_is_reported_at_the_native_position_with_its_sender(
    tron_sim: TronNode, scanner: TronScanner
) -> None:
    to = fresh_address()
    txid = tron_sim.faucet().fund(to, Money(1_234_567, TRX))
    info = mined_in(tron_sim, txid)
    height = info["blockNumber"]

    block = scanner.block(height, frozenset({to}))

    assert [t for t in block.transfers if t.txid == txid] == [
        ChainTransfer(
            chain=Chain.TRON,
            asset="TRX",
            txid=txid,
            position=NATIVE_POSITION,
            to_address=to,
            amount=1_234_567,
            sender=tron_sim.genesis_address,
            sender_kind=SenderKind.KNOWN,
            success=True,
            token_contract=None,
            canonical=True,
        )
    ]
    assert block.height == height
    assert block.hash == scanner.block_hash(height)
    assert block.parent_hash == scanner.block_hash(height - 1)
    assert block.time == block_time(info["blockTimeStamp"])


def test_usdt_transfers_are_reported_with_contract_sender_and_log_positions(
    tron_sim: TronNode, scanner: TronScanner
) -> None:
    """Two USDT transfers and a TRX transfer broadcast together: each USDT Transfer log is at
    its running index among the block's logs; the TRX transfer takes no log index."""
    payees = [fresh_address() for _ in range(3)]
    reference = solid_block_id(tron_sim)
    usdt = tron_sim.usdt_contract
    signed = [
        signed_trc20_transfer(GENESIS_SECRET, usdt, payees[0], 1_000_001, reference),
        signed_trx_transfer(GENESIS_SECRET, payees[1], 2_000_002, reference),
        signed_trc20_transfer(GENESIS_SECRET, usdt, payees[2], 3_000_003, reference),
    ]
    # Broadcast right after a timer block, so that all three usually share the next block.
    just_after_a_block(tron_sim)
    txids = [broadcast(tron_sim, tx) for tx in signed]
    mine(tron_sim)
    heights = sorted({mined_in(tron_sim, txid)["blockNumber"] for txid in txids})

    reported: dict[str, ChainTransfer] = {}
    expected = {txids[1]: NATIVE_POSITION}
    for height in heights:
        in_block = block_txids(tron_sim, height)
        # The shared node is idle otherwise: these blocks hold only this test's transactions.
        # Each USDT transfer emits one log, the first of its own transaction: position 0.
        assert set(in_block) <= set(txids)
        expected |= {txid: 0 for txid in in_block if txid != txids[1]}
        reported |= {t.txid: t for t in scanner.block(height, frozenset(payees)).transfers}

    assert reported.keys() == set(txids)
    for txid, payee, amount in zip(txids, payees, (1_000_001, 2_000_002, 3_000_003), strict=True):
        token = txid != txids[1]
        assert reported[txid] == ChainTransfer(
            chain=Chain.TRON,
            asset="USDT-TRC20" if token else "TRX",
            txid=txid,
            position=expected[txid],
            to_address=payee,
            amount=amount,
            sender=tron_sim.genesis_address,
            sender_kind=SenderKind.KNOWN,
            success=True,
            token_contract=usdt if token else None,
            canonical=True,
        )


def test_reverted_usdt_transfer_is_never_reported_as_successful(
    tron_sim: TronNode, scanner: TronScanner
) -> None:
    """A dev key holding 1 USDT tries to send 5: the node includes the call, reverted, with no
    Transfer log. The scanner reports it from its call data as a failed transfer."""
    key = dev_private_key(MNEMONIC, TronNetwork.DEVNET, secrets.randbelow(1 << 30), account=9)
    sender = tron_address_for_public_key(key.public_key.format(compressed=False)).text
    faucet = tron_sim.faucet()
    faucet.fund(sender, Money(20_000_000, TRX))  # pays the energy of the failing call
    faucet.fund(sender, Money(1_000_000, USDT_TRC20))
    payee = fresh_address()
    signed = signed_trc20_transfer(
        key.secret, tron_sim.usdt_contract, payee, 5_000_000, solid_block_id(tron_sim)
    )
    txid = broadcast(tron_sim, signed)
    mine(tron_sim)
    info = mined_in(tron_sim, txid)
    assert info["receipt"]["result"] == "REVERT" and "log" not in info

    block = scanner.block(info["blockNumber"], frozenset({payee}))

    mine_only = [t for t in block.transfers if t.txid == txid]
    assert not any(t.success for t in mine_only)
    assert mine_only == [
        ChainTransfer(
            chain=Chain.TRON,
            asset="USDT-TRC20",
            txid=txid,
            position=0,  # where its Transfer log would have been: alone in its block
            to_address=payee,
            amount=5_000_000,
            sender=sender,
            sender_kind=SenderKind.KNOWN,
            success=False,
            token_contract=tron_sim.usdt_contract,
            canonical=True,
        )
    ]


# ------------------------------------------------------------------------------ head, hashes


def test_block_hash_above_the_tip_is_none(scanner: TronScanner) -> None:
    tip = scanner.head().height
    assert scanner.block_hash(tip + 10_000) is None
    assert scanner.block_hash(-1) is None
    with pytest.raises(TronBlockNotFound):
        scanner.block(tip + 10_000, frozenset())


def test_final_height_is_the_solidified_block_behind_the_tip(
    tron_sim: TronNode, api: TronApi, scanner: TronScanner
) -> None:
    solid_lag = node(tron_sim, "debug/info")["solid_lag"]
    head = scanner.head()
    assert 0 < head.height - head.final_height <= solid_lag
    assert head.hash == scanner.block_hash(head.height)
    # The same finality through getnodeinfo, for nodes without the solidity API.
    by_node_info = TronScanner(
        api, usdt_contract=tron_sim.usdt_contract, solidity=SoliditySource.NODE_INFO
    ).head()
    assert 0 < by_node_info.height - by_node_info.final_height <= solid_lag
    assert by_node_info.final_height >= head.final_height


def test_rollback_replaces_the_block_at_a_height_and_its_transfer_is_mined_again(
    tron_sim: TronNode, scanner: TronScanner
) -> None:
    payee = fresh_address()
    txid = tron_sim.faucet().fund(payee, Money(7_000_000, TRX))
    height = mined_in(tron_sim, txid)["blockNumber"]
    before = scanner.block_hash(height)

    node(tron_sim, "debug/rollback", {"to": height - 1})  # the transaction goes back to the pool
    mine(tron_sim)

    after = scanner.block_hash(height)
    assert after is not None and after != before
    again = mined_in(tron_sim, txid)["blockNumber"]
    block = scanner.block(again, frozenset({payee}))
    assert block.hash != before
    assert [(t.txid, t.amount, t.to_address) for t in block.transfers] == [(txid, 7_000_000, payee)]


class _Forwarding(httpx.BaseTransport):
    """A proxy in front of the real simulator that notes each request's path and how much
    its answer weighed; with ``without_getblock`` it answers ``*/getblock`` with 404, as a
    java-tron older than that endpoint does."""

    def __init__(self, *, without_getblock: bool = False) -> None:
        self.without_getblock = without_getblock
        self.seen: list[tuple[str, int]] = []
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.strip("/")
        if self.without_getblock and path.endswith("/getblock"):
            self.seen.append((path, 0))
            return httpx.Response(404, text="Not Found")
        response = self._inner.handle_request(request)
        body = response.read()
        self.seen.append((path, len(body)))
        response.close()
        return httpx.Response(response.status_code, headers=response.headers, content=body)

    def close(self) -> None:
        self._inner.close()


def test_head_and_block_hash_read_block_headers_not_whole_blocks(tron_sim: TronNode) -> None:
    payees = [fresh_address() for _ in range(20)]
    txids = [tron_sim.faucet().fund(payee, Money(1_000_000, TRX)) for payee in payees]
    busy = mined_in(tron_sim, txids[-1])["blockNumber"]
    whole = len(json.dumps(node(tron_sim, "wallet/getblockbynum", {"num": busy, "visible": True})))
    proxy = _Forwarding()
    with TronApi(tron_sim.url, transport=proxy) as api:
        scanner = TronScanner(api, usdt_contract=tron_sim.usdt_contract)
        head = scanner.head()
        assert head.hash == scanner.block_hash(head.height)
        assert (
            scanner.block_hash(busy)
            == node(tron_sim, "wallet/getblockbynum", {"num": busy})["blockID"]
        )
    assert [path for path, _ in proxy.seen] == [
        "wallet/getblock",
        "walletsolidity/getblock",
        "wallet/getblock",
        "wallet/getblock",
    ]
    assert proxy.seen[-1][1] < whole / 2  # the busy block's header, not its transactions


def test_a_node_without_getblock_is_asked_for_whole_blocks_instead(
    tron_sim: TronNode, scanner: TronScanner
) -> None:
    proxy = _Forwarding(without_getblock=True)
    with TronApi(tron_sim.url, transport=proxy) as old:
        legacy = TronScanner(old, usdt_contract=tron_sim.usdt_contract)
        head = legacy.head()
        assert head.hash == scanner.block_hash(head.height)
        assert legacy.block_hash(head.height) == head.hash
        assert legacy.block_hash(head.height + 10_000) is None
        assert old.now_block().number >= head.height
    assert [path for path, _ in proxy.seen] == [
        "wallet/getblock",  # 404: asked once, never again
        "wallet/getnowblock",
        "walletsolidity/getnowblock",
        "wallet/getblockbynum",
        "wallet/getblockbynum",
        "wallet/getnowblock",
    ]


# ------------------------------------------------------------------------------ node errors


def test_the_nodes_error_body_and_a_dead_node_raise_typed_errors(api: TronApi) -> None:
    with pytest.raises(TronNodeError, match="num must be an integer"):
        api.post("wallet/getblockbynum", {"num": "twelve"})
    with (
        TronApi(f"http://127.0.0.1:{free_port()}", timeout=2) as dead,
        pytest.raises(TronTransportError),
    ):
        dead.now_block()


# ------------------------------------------------------------------------------ stand-in node

USDT = TronAddress.from_bytes(bytes(range(1, 21)))
OTHER_TOKEN = TronAddress.from_bytes(bytes(range(21, 41)))
ALICE = TronAddress.from_bytes(b"\xaa" * 20)
BOB = TronAddress.from_bytes(b"\xbb" * 20)
APPROVAL_TOPIC = bytes.fromhex("8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925")
BLOCK_ID = "00000000000003e8" + "ab" * 24
PARENT_ID = "00000000000003e7" + "cd" * 24
TIMESTAMP_MS = 1_790_000_000_123


def word(value: int | TronAddress) -> str:
    if isinstance(value, TronAddress):
        return (bytes(12) + value.evm_bytes).hex()
    return value.to_bytes(32, "big").hex()


def trigger(txid: str, contract: TronAddress, data: str, ret: str) -> dict[str, Any]:
    value = {"owner_address": ALICE.text, "contract_address": contract.text, "data": data}
    return {
        "ret": [{"contractRet": ret}],
        "txID": txid,
        "raw_data": {"contract": [{"type": "TriggerSmartContract", "parameter": {"value": value}}]},
    }


def transfer_log(contract: str, to: TronAddress, amount: int) -> dict[str, Any]:
    topics = [TRANSFER_EVENT_TOPIC.hex(), word(ALICE), word(to)]
    return {"address": contract, "topics": topics, "data": word(amount)}


def receipt(txid: str, result: str, logs: list[dict[str, Any]]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": txid,
        "blockNumber": 1000,
        "blockTimeStamp": TIMESTAMP_MS,
        "receipt": {"result": result},
    }
    if logs:
        info["log"] = logs
    if result != "SUCCESS":
        info["result"] = "FAILED"
    return info


TX = [f"{n:064x}" for n in range(1, 5)]
BLOCK: dict[str, Any] = {
    "blockID": BLOCK_ID,
    "block_header": {
        "raw_data": {"number": 1000, "parentHash": PARENT_ID, "timestamp": TIMESTAMP_MS}
    },
    "transactions": [
        # An approval, then a USDT transfer, in one call (log addresses as base58, which is
        # what java-tron prints for `visible: true`).
        trigger(TX[0], USDT, "", "SUCCESS"),
        # Another token's Transfer, and an ERC-721-style Transfer (4 topics): not USDT.
        trigger(TX[1], OTHER_TOKEN, "", "SUCCESS"),
        # A reverted `transfer(BOB, 9)` on USDT: no logs.
        trigger(TX[2], USDT, "a9059cbb" + word(BOB) + word(9), "REVERT"),
        {
            "ret": [{"contractRet": "SUCCESS"}],
            "txID": TX[3],
            "raw_data": {
                "contract": [
                    {
                        "type": "TransferContract",
                        "parameter": {
                            "value": {"owner_address": ALICE.text, "to_address": BOB.text}
                        },
                    }
                ]
            },
        },
    ],
}
RECEIPTS: list[dict[str, Any]] = [
    receipt(
        TX[0],
        "SUCCESS",
        [
            {
                "address": USDT.text,
                "topics": [APPROVAL_TOPIC.hex(), word(ALICE), word(BOB)],
                "data": word(5),
            },
            transfer_log(USDT.text, BOB, 1_500_000),
        ],
    ),
    receipt(
        TX[1],
        "SUCCESS",
        [
            transfer_log(OTHER_TOKEN.evm_bytes.hex(), BOB, 7),  # the 20-byte form, no 41
            {
                "address": OTHER_TOKEN.hex,
                "topics": [TRANSFER_EVENT_TOPIC.hex(), word(ALICE), word(BOB), word(1)],
            },
        ],
    ),
    receipt(TX[2], "REVERT", []),
]


def stand_in_node(answers: Callable[[str, dict[str, Any]], Any]) -> TronApi:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        assert body["visible"] is True
        answer = answers(request.url.path, body)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    return TronApi("http://tron.invalid", transport=httpx.MockTransport(handle))


def test_positions_count_logs_within_each_transaction() -> None:
    def answers(path: str, body: dict[str, Any]) -> Any:
        if path == "/wallet/getblockbynum":
            return BLOCK if body["num"] == 1000 else {}
        assert path == "/wallet/gettransactioninfobyblocknum" and body["num"] == 1000
        return RECEIPTS

    with stand_in_node(answers) as api:
        block = TronScanner(api, usdt_contract=USDT.text).block(1000, frozenset({BOB.text}))

    assert block.hash == BLOCK_ID and block.parent_hash == PARENT_ID
    assert block.time == block_time(TIMESTAMP_MS)
    summary = [
        (
            t.txid,
            t.position,
            t.asset,
            t.amount,
            t.to_address,
            t.token_contract,
            t.canonical,
            t.success,
        )
        for t in block.transfers
    ]
    assert summary == [
        # TX0: log 0 is the approval; log 1 the USDT transfer.
        (TX[0], 1, "USDT-TRC20", 1_500_000, BOB.text, USDT.text, True, True),
        # TX1: log 0 another token (reported, not canonical); log 1 has four topics: skipped.
        (TX[1], 0, "USDT-TRC20", 7, BOB.text, OTHER_TOKEN.text, False, True),
        # TX2: the reverted call left no log; it is reported where its log would be.
        (TX[2], 0, "USDT-TRC20", 9, BOB.text, USDT.text, True, False),
        # A zero amount is left out of the JSON (proto3): it is 0, not an error.
        (TX[3], NATIVE_POSITION, "TRX", 0, BOB.text, None, True, True),
    ]
    assert {t.sender for t in block.transfers} == {ALICE.text}


def test_receipts_of_another_block_at_the_same_height_are_read_again() -> None:
    """The chain moves between the block request and the receipts request: the receipts'
    block timestamp gives it away, and both are fetched again."""
    moved = [dict(info, blockTimeStamp=TIMESTAMP_MS + 3000) for info in RECEIPTS]
    served: list[list[dict[str, Any]]] = [moved, RECEIPTS]

    def answers(path: str, body: dict[str, Any]) -> Any:
        if path == "/wallet/getblockbynum":
            return BLOCK
        return served.pop(0) if served else moved

    with stand_in_node(answers) as api:
        scanner = TronScanner(api, usdt_contract=USDT.text, attempts=2)
        assert len(scanner.block(1000, frozenset({BOB.text})).transfers) == 4
        with pytest.raises(TronChainMoved, match="disagreed 2 times"):
            scanner.block(1000, frozenset({BOB.text}))


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(502, text="bad gateway"), TronTransportError),
        (httpx.Response(200, text="<html>"), TronTransportError),
        ({"Error": "class java.lang.NullPointerException : null"}, TronNodeError),
        ({"blockID": 5, "block_header": {"raw_data": {}}}, TronUnexpectedAnswer),
        (dict(BLOCK, blockID=BLOCK_ID[:-2]), TronUnexpectedAnswer),
        (dict(BLOCK, block_header={"raw_data": {"number": 1000.0}}), TronUnexpectedAnswer),
        ([BLOCK], TronUnexpectedAnswer),
    ],
    ids=["http-502", "not-json", "error-body", "id-not-hex", "short-id", "float", "list"],
)
def test_bad_answers_raise_typed_errors(answer: Any, error: type[Exception]) -> None:
    with stand_in_node(lambda _path, _body: answer) as api, pytest.raises(error):
        api.block_by_num(1000)
