"""ganache with TestUSDT: deployment, transfers, reverts, Transfer logs as a watcher reads them."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError

from kassa_dev.devnet import ganache
from kassa_dev.devnet.testing import GanacheNode

pytestmark = pytest.mark.chain

TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)")


def reverted_with(error: ContractLogicError, signature: str) -> bool:
    """Whether the revert data starts with the selector of the custom error `signature`."""
    data = error.data
    # ganache reports revert data as {"result": "0x…", …}; other nodes as the bare hex string.
    result = data.get("result") if isinstance(data, dict) else data
    return isinstance(result, str) and result.startswith(
        Web3.keccak(text=signature)[:4].to_0x_hex()
    )


def test_account_0_is_ganaches_deterministic_account() -> None:
    assert ganache.dev_account(0).address == "0x90F8bf6A479f320ead074411a4B0e7944Ea8c9C1"


def test_test_usdt_is_deployed_with_six_decimals_and_the_supply_minted_to_account_0(
    ganache_node: GanacheNode,
) -> None:
    w3 = ganache_node.web3()
    assert w3.eth.chain_id == ganache.CHAIN_ID
    token = ganache.usdt_contract(w3, ganache_node.usdt_address)
    assert token.functions.decimals().call() == 6
    assert token.functions.symbol().call() == "USDT"
    assert token.functions.name().call() == "Tether USD (devnet)"
    assert token.functions.owner().call() == ganache.dev_account(0).address
    assert token.functions.totalSupply().call() >= ganache.USDT_SUPPLY
    # Reusing the contract on a persisted chain recognises it instead of deploying another.
    assert ganache.ensure_test_usdt(w3, ganache_node.usdt_address) == ganache_node.usdt_address


def test_usdt_transfer_emits_a_transfer_log_found_by_eth_get_logs(
    ganache_node: GanacheNode,
) -> None:
    w3 = ganache_node.web3()
    owner = ganache.dev_account(0)
    recipient = Account.create().address
    token = ganache.usdt_contract(w3, ganache_node.usdt_address)

    receipt = ganache.send_call(w3, owner, token.functions.transfer(recipient, 25_500_000))

    assert ganache.erc20_balance(w3, ganache_node.usdt_address, recipient) == 25_500_000
    # The indexed `to` is the third topic, left-padded to 32 bytes: how a deposit watcher filters.
    to_topic = "0x" + "00" * 12 + recipient[2:].lower()
    logs = w3.eth.get_logs(
        {
            "address": token.address,
            "fromBlock": receipt["blockNumber"],
            "toBlock": receipt["blockNumber"],
            "topics": [TRANSFER_TOPIC.to_0x_hex(), None, to_topic],
        }
    )
    assert len(logs) == 1
    event = token.events.Transfer().process_log(logs[0])
    assert event["args"]["from"] == owner.address
    assert event["args"]["to"] == recipient
    assert event["args"]["value"] == 25_500_000
    assert event["transactionHash"] == receipt["transactionHash"]


def test_transfer_beyond_the_balance_reverts(ganache_node: GanacheNode) -> None:
    w3 = ganache_node.web3()
    poor = ganache.dev_account(5)  # funded with ETH for gas, holds no USDT
    token = ganache.usdt_contract(w3, ganache_node.usdt_address)
    with pytest.raises(ContractLogicError) as refused:
        ganache.send_call(w3, poor, token.functions.transfer(ganache.dev_account(0).address, 1))
    assert reverted_with(refused.value, "InsufficientBalance(uint256,uint256)")
    assert ganache.erc20_balance(w3, ganache_node.usdt_address, poor.address) == 0


def test_only_the_owner_may_mint(ganache_node: GanacheNode) -> None:
    w3 = ganache_node.web3()
    stranger = ganache.dev_account(6)
    token = ganache.usdt_contract(w3, ganache_node.usdt_address)
    with pytest.raises(ContractLogicError) as refused:
        ganache.send_call(w3, stranger, token.functions.mint(stranger.address, 10**6))
    assert reverted_with(refused.value, "NotOwner()")
