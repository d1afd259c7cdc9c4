"""`EthScanner` and `EthRpc` against the real ganache node (session fixture `ganache_node`).

Every transfer is a real signed transaction: the devnet faucet for plain payments, and
transactions signed here (eth_account, EIP-1559) for what the faucet refuses to do on purpose:
reverting calls, a second ERC-20, two transfers in one block. The node is shared by the whole
session, so heights always come from receipts or the node, never from assumptions.
The finality fallback for nodes without the ``finalized`` tag is checked through
`httpx.MockTransport` answering like such a node (a stand-in for the node, not for our code).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.types import TxReceipt

from kassa.chains.eth.address import checksum_encode
from kassa.chains.eth.rpc import EthRpc, RpcError, RpcTransportError, UnexpectedResponse, quantity
from kassa.chains.eth.scanner import (
    TRANSFER_TOPIC,
    BlockNotFound,
    EthFinality,
    EthScanner,
)
from kassa.chains.network import Chain
from kassa.chains.scanning import NATIVE_POSITION, ChainTransfer, SenderKind
from kassa.money import ETH, USDT_ERC20, Money
from kassa_dev.devnet import ganache
from kassa_dev.devnet.testing import GanacheNode, free_port

OWNER = ganache.dev_account(0)
"""Holds the TestUSDT supply; pays the faucet."""
GAS = 150_000


def new_address() -> str:
    return checksum_encode(secrets.token_bytes(20))


def send(w3: Web3, sender: LocalAccount, tx: dict[str, Any], *, nonce: int | None = None) -> bytes:
    """Sign `tx` (fixed gas, so a reverting call is sent rather than refused by estimation)
    and send it raw; return its hash."""
    base_fee = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    fields = {
        "chainId": w3.eth.chain_id,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending")
        if nonce is None
        else nonce,
        "maxPriorityFeePerGas": 10**9,
        "maxFeePerGas": 2 * base_fee + 10**9,
        "type": 2,
        "gas": GAS,
        **tx,
    }
    return bytes(w3.eth.send_raw_transaction(sender.sign_transaction(fields).raw_transaction))


def receipt(w3: Web3, tx_hash: bytes) -> TxReceipt:
    return w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=20, poll_latency=0.05)


def token_transfer_data(w3: Web3, token: str, to: str, amount: int) -> str:
    call = ganache.usdt_contract(w3, token).functions.transfer(to, amount)
    return str(call.build_transaction({"from": OWNER.address, "gas": GAS})["data"])


@pytest.fixture
def rpc(ganache_node: GanacheNode) -> Iterator[EthRpc]:
    with EthRpc(ganache_node.url) as client:
        yield client


@pytest.fixture
def scanner(rpc: EthRpc, ganache_node: GanacheNode) -> EthScanner:
    return EthScanner(
        rpc,
        usdt_contract=ganache_node.usdt_address,
        confirmations=3,
        finality=EthFinality.CONFIRMATIONS,
    )


@pytest.fixture
def w3(ganache_node: GanacheNode) -> Web3:
    return ganache_node.web3()


# --------------------------------------------------------------------------- head and hashes


def test_head_in_both_finality_modes(
    rpc: EthRpc, scanner: EthScanner, ganache_node: GanacheNode, w3: Web3
) -> None:
    head = scanner.head()
    assert head.height == w3.eth.block_number
    assert head.hash == w3.eth.get_block(head.height)["hash"].to_0x_hex()
    assert head.final_height == head.height - 2
    by_tag = EthScanner(rpc, usdt_contract=ganache_node.usdt_address, confirmations=3)
    assert by_tag.finality is EthFinality.TAG  # the default
    # ganache treats its latest block as finalized: the reason the devnet counts instead.
    tagged = by_tag.head()
    assert tagged.final_height == tagged.height
    counting = EthScanner(
        rpc, usdt_contract=ganache_node.usdt_address, confirmations=1, finality="confirmations"
    )
    assert counting.finality is EthFinality.CONFIRMATIONS


def test_block_hash_and_parent(scanner: EthScanner, w3: Web3) -> None:
    w3.provider.make_request(cast(Any, "evm_mine"), [])
    head = scanner.head()
    block = scanner.block(head.height, frozenset())
    assert block.hash == head.hash == scanner.block_hash(head.height)
    assert block.parent_hash == scanner.block_hash(head.height - 1)
    assert int(block.time.timestamp()) == w3.eth.get_block(head.height)["timestamp"]
    assert scanner.block_hash(head.height + 1) is None
    assert scanner.block_hash(-1) is None
    with pytest.raises(BlockNotFound):
        scanner.block(head.height + 1, frozenset())


# --------------------------------------------------------------------------- transfers


def test_native_eth_payment_is_one_exact_transfer(
    ganache_node: GanacheNode, scanner: EthScanner, w3: Web3
) -> None:
    watched = new_address()
    amount = Money.parse("0.012345678901234567", ETH)
    txid = ganache_node.faucet().fund(watched, amount)
    height = receipt(w3, bytes.fromhex(txid[2:]))["blockNumber"]
    block = scanner.block(height, frozenset({watched.lower()}))
    assert block.transfers == (
        ChainTransfer(
            chain=Chain.ETH,
            asset="ETH",
            txid=txid,
            position=NATIVE_POSITION,
            to_address=watched,
            amount=12_345_678_901_234_567,
            sender=OWNER.address,
            sender_kind=SenderKind.KNOWN,
            success=True,
        ),
    )
    # Paying nobody watched: not reported (its success would need a receipt).
    assert scanner.block(height, frozenset()).transfers == ()


def test_usdt_payment_is_one_exact_canonical_transfer(
    ganache_node: GanacheNode, scanner: EthScanner, w3: Web3
) -> None:
    watched = new_address()
    txid = ganache_node.faucet().fund(watched, Money.parse("25.5", USDT_ERC20))
    height = receipt(w3, bytes.fromhex(txid[2:]))["blockNumber"]
    # The match key is lower case; the report is EIP-55.
    block = scanner.block(height, frozenset({watched.lower()}))
    assert block.transfers == (
        ChainTransfer(
            chain=Chain.ETH,
            asset="USDT-ERC20",
            txid=txid,
            position=0,  # the only log of the block
            to_address=watched,
            amount=25_500_000,
            sender=OWNER.address,
            sender_kind=SenderKind.KNOWN,
            success=True,
            token_contract=ganache_node.usdt_address,
            canonical=True,
        ),
    )


def test_a_reverted_token_transfer_is_no_transfer(
    ganache_node: GanacheNode, scanner: EthScanner, w3: Web3
) -> None:
    watched = new_address()
    supply = ganache.USDT_SUPPLY
    data = token_transfer_data(w3, ganache_node.usdt_address, watched, supply + 1)
    mined = receipt(w3, send(w3, OWNER, {"to": ganache_node.usdt_address, "data": data}))
    assert mined["status"] == 0  # more than the whole supply: TestUSDT reverts
    block = scanner.block(mined["blockNumber"], frozenset({watched.lower()}))
    assert block.transfers == ()
    assert len(w3.eth.get_block(mined["blockNumber"])["transactions"]) == 1  # it was mined


def test_a_second_erc20_is_reported_as_not_canonical(
    ganache_node: GanacheNode, scanner: EthScanner, w3: Web3
) -> None:
    fake = ganache.deploy_test_usdt(w3, supply=10**12)  # same code, another address
    watched = new_address()
    data = token_transfer_data(w3, fake, watched, 7_000_000)
    mined = receipt(w3, send(w3, OWNER, {"to": fake, "data": data}))
    [transfer] = scanner.block(mined["blockNumber"], frozenset({watched.lower()})).transfers
    assert transfer == ChainTransfer(
        chain=Chain.ETH,
        asset="USDT-ERC20",
        txid=mined["transactionHash"].to_0x_hex(),
        position=0,
        to_address=watched,
        amount=7_000_000,
        sender=OWNER.address,
        sender_kind=SenderKind.KNOWN,
        success=True,
        token_contract=fake,
        canonical=False,
    )


def test_a_failed_native_send_is_reported_as_failed(
    ganache_node: GanacheNode, scanner: EthScanner, w3: Web3
) -> None:
    # TestUSDT has no receive function: ETH sent to it reverts. Watching a contract address
    # is artificial, but it is the only way a plain value transfer can fail.
    contract = ganache_node.usdt_address
    mined = receipt(w3, send(w3, OWNER, {"to": contract, "value": 5 * 10**15}))
    assert mined["status"] == 0
    [transfer] = scanner.block(mined["blockNumber"], frozenset({contract.lower()})).transfers
    assert transfer == ChainTransfer(
        chain=Chain.ETH,
        asset="ETH",
        txid=mined["transactionHash"].to_0x_hex(),
        position=NATIVE_POSITION,
        to_address=contract,
        amount=5 * 10**15,
        sender=OWNER.address,
        sender_kind=SenderKind.KNOWN,
        success=False,
    )


def test_two_token_transfers_in_one_block_keep_per_transaction_positions(
    ganache_node: GanacheNode, scanner: EthScanner, w3: Web3
) -> None:
    watched, other = new_address(), new_address()
    token = ganache_node.usdt_address
    nonce = w3.eth.get_transaction_count(OWNER.address, "pending")
    w3.provider.make_request(cast(Any, "miner_stop"), [])
    try:
        hashes = [
            send(w3, OWNER, {"to": token, "data": token_transfer_data(w3, token, to, n)}, nonce=i)
            for i, (to, n) in enumerate([(other, 1_000_000), (watched, 2_000_000)], start=nonce)
        ]
        hashes.append(
            send(
                w3,
                OWNER,
                {"to": token, "data": token_transfer_data(w3, token, watched, 3_000_000)},
                nonce=nonce + 2,
            )
        )
        w3.provider.make_request(cast(Any, "evm_mine"), [])
    finally:
        w3.provider.make_request(cast(Any, "miner_start"), [])
    mined = [receipt(w3, h) for h in hashes]
    assert len({m["blockNumber"] for m in mined}) == 1
    block = scanner.block(mined[0]["blockNumber"], frozenset({watched.lower()}))
    # Positions count Transfer logs within each transaction, not across the block (log 0 of
    # the block pays `other`, which nobody watches), so a reorg that re-mines a transfer in
    # another block keeps its deposit key.
    assert [(t.txid, t.position, t.amount) for t in block.transfers] == [
        (mined[1]["transactionHash"].to_0x_hex(), 0, 2_000_000),
        (mined[2]["transactionHash"].to_0x_hex(), 0, 3_000_000),
    ]


def test_evm_revert_and_mine_replace_the_block(
    ganache_node: GanacheNode, scanner: EthScanner, w3: Web3
) -> None:
    watched = new_address()
    snapshot = w3.provider.make_request(cast(Any, "evm_snapshot"), [])["result"]
    txid = ganache_node.faucet().fund(watched, Money.parse("1", ETH))
    height = receipt(w3, bytes.fromhex(txid[2:]))["blockNumber"]
    original = scanner.block_hash(height)
    assert [t.txid for t in scanner.block(height, frozenset({watched.lower()})).transfers] == [txid]

    assert w3.provider.make_request(cast(Any, "evm_revert"), [snapshot])["result"] is True
    assert scanner.head().height == height - 1
    assert scanner.block_hash(height) is None
    w3.provider.make_request(cast(Any, "evm_mine"), [])
    replaced = scanner.block_hash(height)
    assert replaced is not None and replaced != original
    assert scanner.block(height, frozenset({watched.lower()})).transfers == ()


# --------------------------------------------------------------------------- finality fallback


def fake_node(answers: dict[str, object], seen: list[str]) -> EthRpc:
    """An EthRpc whose node answers ``{method or block tag: JSON-RPC body}``."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        key = body["method"]
        if key == "eth_getBlockByNumber":
            key = body["params"][0]
        seen.append(key)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], **answers[key]})  # type: ignore[dict-item]

    return EthRpc("http://node.invalid", transport=httpx.MockTransport(handle))


LATEST = {"result": {"number": "0x64", "hash": "0x" + "ab" * 32}}
USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"


def test_a_node_without_the_finalized_tag_falls_back_to_confirmations_once() -> None:
    seen: list[str] = []
    unknown = {"error": {"code": -32602, "message": "invalid block tag finalized"}}
    rpc = fake_node({"latest": LATEST, "finalized": unknown}, seen)
    scanner = EthScanner(rpc, usdt_contract=USDT, confirmations=12)
    assert scanner.head().final_height == 100 - 11
    assert scanner.head().final_height == 89
    assert seen == ["latest", "finalized", "latest"]  # asked once, remembered


def test_the_finalized_tag_is_followed_and_a_later_failure_is_not_hidden() -> None:
    seen: list[str] = []
    answers: dict[str, object] = {
        "latest": LATEST,
        "finalized": {"result": {"number": "0x40", "hash": "0x" + "cd" * 32}},
    }
    scanner = EthScanner(fake_node(answers, seen), usdt_contract=USDT, confirmations=12)
    assert scanner.head().final_height == 64
    answers["finalized"] = {"error": {"code": -32000, "message": "backend busy"}}
    with pytest.raises(RpcError, match="backend busy"):
        scanner.head()
    answers["finalized"] = {"result": None}  # knows the tag, finalized nothing yet
    assert scanner.head().final_height == -1


# --------------------------------------------------------------------------- RPC errors


def test_rpc_errors_are_typed(rpc: EthRpc) -> None:
    with pytest.raises(RpcError) as caught:
        rpc.call("eth_noSuchMethod")
    assert "does not exist" in caught.value.message
    with (
        EthRpc(f"http://127.0.0.1:{free_port()}", timeout=2) as dead,
        pytest.raises(RpcTransportError, match="ConnectError"),
    ):
        dead.block_number()


def test_quantities_are_exact_ints_or_refused() -> None:
    assert quantity("0x0") == 0
    assert quantity("0x" + "f" * 64) == 2**256 - 1
    for bad in ("0x", "12", 12, None, "0xg1"):
        with pytest.raises(UnexpectedResponse):
            quantity(bad)
    assert TRANSFER_TOPIC == "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
