"""The payout side of `EthRpc` against the real ganache node: balances, nonces, code, gas
estimation, ``eth_call`` and broadcasting one signed transaction (built by `sign_eth_transfer`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import coincurve
import pytest

from kassa.chains.eth.address import checksum_encode, parse_eth_address
from kassa.chains.eth.rpc import EthRpc, RpcError, UnexpectedResponse, data_bytes
from kassa.chains.eth.tx import (
    EthFees,
    erc20_transfer_calldata,
    eth_address_for_key,
    sign_eth_transfer,
)
from kassa.chains.network import EthNetwork
from kassa.money import ETH, Money
from kassa_dev.devnet import ganache
from kassa_dev.devnet.testing import GanacheNode

GWEI = 10**9


@pytest.fixture
def eth_rpc(ganache_node: GanacheNode) -> Iterator[EthRpc]:
    with EthRpc(ganache_node.url) as client:
        yield client


def test_balance_nonce_and_broadcast_of_a_signed_transfer(
    eth_rpc: EthRpc, ganache_node: GanacheNode
) -> None:
    key = coincurve.PrivateKey(secrets.token_bytes(32))
    sender = eth_address_for_key(key).text
    assert eth_rpc.get_balance(sender) == 0
    assert eth_rpc.get_transaction_count(sender) == 0
    ganache_node.faucet().fund(sender, Money(10**16, ETH))
    funded_at = eth_rpc.block_number()
    assert eth_rpc.get_balance(sender, funded_at) == 10**16
    assert eth_rpc.get_balance(sender, funded_at - 1) == 0

    to = parse_eth_address(checksum_encode(secrets.token_bytes(20)))
    assert eth_rpc.estimate_gas({"from": sender, "to": to.text, "value": hex(1234)}) == 21_000
    block = eth_rpc.get_block("latest", full=False)
    assert block is not None
    base = int(block["baseFeePerGas"], 16)
    signed = sign_eth_transfer(
        key,
        network=EthNetwork(ganache.CHAIN_ID),
        nonce=0,
        to=to,
        value_wei=1234,
        fees=EthFees(max_fee_per_gas=2 * base + GWEI, max_priority_fee_per_gas=GWEI),
    )
    assert eth_rpc.send_raw_transaction(signed.raw) == signed.hash
    known = eth_rpc.get_transaction_by_hash(signed.hash)
    assert known is not None and int(known["nonce"], 16) == 0
    assert eth_rpc.get_balance(to.text) == 1234
    assert eth_rpc.get_transaction_count(sender) == 1
    assert eth_rpc.get_transaction_by_hash("0x" + "00" * 32) is None


def test_code_eth_call_and_a_reverting_estimate(eth_rpc: EthRpc, ganache_node: GanacheNode) -> None:
    token = ganache_node.usdt_address
    assert eth_rpc.get_code(checksum_encode(secrets.token_bytes(20))) == b""
    assert len(eth_rpc.get_code(token)) > 100

    owner = ganache.dev_account(0).address
    balance_of = bytes.fromhex("70a08231") + bytes(12) + bytes.fromhex(owner[2:])
    answer = eth_rpc.call_contract({"to": token, "data": "0x" + balance_of.hex()})
    assert int.from_bytes(answer, "big") == ganache.erc20_balance(ganache_node.web3(), token, owner)

    empty = checksum_encode(secrets.token_bytes(20))  # holds no tokens: transfer reverts
    data = erc20_transfer_calldata(parse_eth_address(owner), 1)
    with pytest.raises(RpcError) as refused:
        eth_rpc.estimate_gas({"from": empty, "to": token, "data": "0x" + data.hex()})
    assert "revert" in refused.value.message


@pytest.mark.parametrize("text", ["", "0x0", "12ab", "0xzz", None, 5])
def test_data_bytes_refuses_what_is_not_hex_data(text: object) -> None:
    with pytest.raises(UnexpectedResponse):
        data_bytes(text, "eth_call")


def test_data_bytes_decodes_hex_data() -> None:
    assert data_bytes("0x") == b""
    assert data_bytes("0x00Ff") == b"\x00\xff"
