"""The faucet pays each asset with a real signed transaction; balances are read back on chain."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_typing import HexStr
from tronpy import keys as tron_keys

from kassa.money import ETH, TRX, USDT_ERC20, USDT_TRC20, Money
from kassa_dev.devnet import ganache
from kassa_dev.devnet.faucet import FaucetError
from kassa_dev.devnet.testing import GanacheNode, TronNode

pytestmark = pytest.mark.chain


def new_tron_address() -> str:
    return str(tron_keys.PrivateKey.random().public_key.to_base58check_address())


def tron_post(node: TronNode, path: str, body: dict[str, Any]) -> Any:
    return httpx.post(f"{node.url}/{path}", json=body, timeout=10.0).json()


def trx_balance(node: TronNode, address: str) -> int:
    return int(
        tron_post(node, "wallet/getaccount", {"address": address, "visible": True}).get(
            "balance", 0
        )
    )


def trc20_balance(node: TronNode, address: str) -> int:
    # balanceOf(address): the argument is the 20-byte EVM address (the TRON one without 0x41).
    evm = tron_keys.to_hex_address(address)[2:]
    answer = tron_post(
        node,
        "wallet/triggerconstantcontract",
        {
            "owner_address": address,
            "contract_address": node.usdt_contract,
            "function_selector": "balanceOf(address)",
            "parameter": evm.rjust(64, "0"),
            "visible": True,
        },
    )
    return int(answer["constant_result"][0], 16)


def test_eth_is_paid_from_account_0(ganache_node: GanacheNode) -> None:
    w3 = ganache_node.web3()
    recipient = Account.create().address
    funder_before = w3.eth.get_balance(ganache.dev_account(0).address)

    txid = ganache_node.faucet().fund(recipient, Money.parse("1.25", ETH))

    assert w3.eth.get_balance(recipient) == 1_250_000_000_000_000_000
    tx = w3.eth.get_transaction(HexStr(txid))
    assert tx["from"] == ganache.dev_account(0).address
    assert tx["type"] == 2  # EIP-1559
    assert w3.eth.get_transaction_receipt(HexStr(txid))["status"] == 1
    assert (
        w3.eth.get_balance(ganache.dev_account(0).address)
        < funder_before - 1_250_000_000_000_000_000
    )


def test_usdt_erc20_is_a_token_transfer_from_the_owner(ganache_node: GanacheNode) -> None:
    w3 = ganache_node.web3()
    recipient = Account.create().address

    txid = ganache_node.faucet().fund(recipient, Money.parse("100.5", USDT_ERC20))

    assert ganache.erc20_balance(w3, ganache_node.usdt_address, recipient) == 100_500_000
    token = ganache.usdt_contract(w3, ganache_node.usdt_address)
    (event,) = token.events.Transfer().process_receipt(w3.eth.get_transaction_receipt(HexStr(txid)))
    assert event["args"]["from"] == ganache.dev_account(0).address
    assert event["args"]["to"] == recipient
    assert w3.eth.get_balance(recipient) == 0  # nothing but the token moved


def test_eth_faucet_refuses_a_non_ethereum_address(ganache_node: GanacheNode) -> None:
    with pytest.raises(FaucetError, match="not an Ethereum address"):
        ganache_node.faucet().fund("bcrt1qpa2gjyrd8l5xfyedg8f52m2jcwrfz4uh6hk2uh", Money(1, ETH))


def test_trx_is_paid_from_the_genesis_account(tron_sim: TronNode) -> None:
    recipient = new_tron_address()

    txid = tron_sim.faucet().fund(recipient, Money.parse("12.5", TRX))

    assert trx_balance(tron_sim, recipient) == 12_500_000
    tx = tron_post(tron_sim, "wallet/gettransactionbyid", {"value": txid, "visible": True})
    contract = tx["raw_data"]["contract"][0]
    assert contract["type"] == "TransferContract"
    assert contract["parameter"]["value"]["owner_address"] == tron_sim.genesis_address


def test_usdt_trc20_is_a_token_transfer_from_the_genesis_account(tron_sim: TronNode) -> None:
    recipient = new_tron_address()

    txid = tron_sim.faucet().fund(recipient, Money.parse("7.000001", USDT_TRC20))

    assert trc20_balance(tron_sim, recipient) == 7_000_001
    info = tron_post(tron_sim, "wallet/gettransactioninfobyid", {"value": txid, "visible": True})
    assert info["receipt"]["result"] == "SUCCESS"
    (log,) = info["log"]
    assert log["topics"][0].startswith("ddf252ad")  # Transfer(address,address,uint256)


def test_tron_faucet_refuses_a_non_tron_address(tron_sim: TronNode) -> None:
    with pytest.raises(FaucetError, match="Ethereum address"):
        tron_sim.faucet().fund(Account.create().address, Money(1, TRX))
