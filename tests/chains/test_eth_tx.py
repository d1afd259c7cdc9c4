"""EIP-1559 ETH and ERC-20 transfers, checked offline with the reference library: the signer
is recovered from the raw bytes, the fields and the calldata decode back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import coincurve
import pytest
from eth_abi.abi import decode
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_hash.auto import keccak
from hexbytes import HexBytes

from kassa.chains.errors import InvalidTransaction
from kassa.chains.eth.address import EthAddress, parse_eth_address
from kassa.chains.eth.tx import (
    ERC20_TRANSFER_SELECTOR,
    EthFees,
    erc20_transfer_calldata,
    eth_address_for_key,
    sign_erc20_transfer,
    sign_eth_transfer,
)
from kassa.chains.network import EthNetwork

# ganache's deterministic account 0 and hardhat's (docs/devnet.md §2): well-known dev keys.
KEY = coincurve.PrivateKey(
    bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
)
KEY_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
RECIPIENT = parse_eth_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")  # EIP-55 vector
TOKEN = parse_eth_address("0xdAC17F958D2ee523a2206206994597C13D831ec7")  # mainnet USDT
NETWORK = EthNetwork(1337)
FEES = EthFees(max_fee_per_gas=30_000_000_000, max_priority_fee_per_gas=1_500_000_000)


def _decoded(raw: bytes) -> dict[str, object]:
    return dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())


def test_the_sender_is_the_keys_address() -> None:
    assert eth_address_for_key(KEY).text == KEY_ADDRESS
    assert Account.from_key(KEY.secret).address == KEY_ADDRESS


def test_native_transfer() -> None:
    signed = sign_eth_transfer(
        KEY, network=NETWORK, nonce=7, to=RECIPIENT, value_wei=10**18, fees=FEES
    )
    assert signed.raw[0] == 2  # EIP-2718 type 2 envelope
    assert Account.recover_transaction(signed.raw) == KEY_ADDRESS
    assert signed.sender.text == KEY_ADDRESS
    assert signed.hash == "0x" + keccak(signed.raw).hex()
    fields = _decoded(signed.raw)
    assert fields["chainId"] == 1337
    assert fields["nonce"] == 7
    assert fields["to"] == RECIPIENT.raw
    assert fields["value"] == 10**18
    assert fields["gas"] == 21_000
    assert fields["maxFeePerGas"] == FEES.max_fee_per_gas
    assert fields["maxPriorityFeePerGas"] == FEES.max_priority_fee_per_gas
    assert fields["data"] == b""
    assert signed.max_cost == 10**18 + 21_000 * 30_000_000_000


def test_erc20_transfer() -> None:
    signed = sign_erc20_transfer(
        KEY, network=NETWORK, nonce=0, token=TOKEN, to=RECIPIENT, amount=25_500_000, fees=FEES
    )
    assert Account.recover_transaction(signed.raw) == KEY_ADDRESS
    fields = _decoded(signed.raw)
    assert fields["to"] == TOKEN.raw
    assert fields["value"] == 0
    data = fields["data"]
    assert isinstance(data, bytes)
    assert data[:4] == bytes.fromhex("a9059cbb") == ERC20_TRANSFER_SELECTOR
    to, amount = decode(["address", "uint256"], data[4:])
    assert parse_eth_address(to) == RECIPIENT
    assert amount == 25_500_000
    assert signed.value == 0
    assert signed.max_cost == 100_000 * FEES.max_fee_per_gas


def test_calldata_carries_the_full_uint256_range() -> None:
    data = erc20_transfer_calldata(RECIPIENT, 2**256 - 1)
    assert decode(["address", "uint256"], data[4:]) == (RECIPIENT.text.lower(), 2**256 - 1)


def test_signing_is_deterministic_and_a_replacement_keeps_the_nonce() -> None:
    first = sign_eth_transfer(KEY, network=NETWORK, nonce=3, to=RECIPIENT, value_wei=1, fees=FEES)
    again = sign_eth_transfer(KEY, network=NETWORK, nonce=3, to=RECIPIENT, value_wei=1, fees=FEES)
    assert first.raw == again.raw
    bumped = EthFees(FEES.max_fee_per_gas * 2, FEES.max_priority_fee_per_gas * 2)
    replacement = sign_eth_transfer(
        KEY, network=NETWORK, nonce=3, to=RECIPIENT, value_wei=1, fees=bumped
    )
    assert (replacement.sender, replacement.nonce) == (first.sender, first.nonce)
    assert replacement.hash != first.hash


def test_chain_id_is_signed() -> None:
    mainnet = sign_eth_transfer(
        KEY, network=EthNetwork(1), nonce=0, to=RECIPIENT, value_wei=1, fees=FEES
    )
    assert _decoded(mainnet.raw)["chainId"] == 1
    assert mainnet.chain_id == 1


ZERO = EthAddress.from_bytes(bytes(20))


def _native(**changes: Any) -> object:
    arguments: dict[str, Any] = {"network": NETWORK, "nonce": 0, "to": RECIPIENT}
    arguments.update({"value_wei": 1, "fees": FEES}, **changes)
    return sign_eth_transfer(KEY, **arguments)


def _token(**changes: Any) -> object:
    arguments: dict[str, Any] = {"network": NETWORK, "nonce": 0, "token": TOKEN}
    arguments.update({"to": RECIPIENT, "amount": 1, "fees": FEES}, **changes)
    return sign_erc20_transfer(KEY, **arguments)


@pytest.mark.parametrize(
    ("sign", "changes", "says"),
    [
        (_native, {"to": ZERO}, "zero address"),
        (_token, {"to": ZERO}, "zero address"),
        (_token, {"to": TOKEN}, "token contract itself"),
        (_native, {"nonce": -1}, "nonce"),
        (_native, {"value_wei": 0}, "value_wei"),
        (_native, {"gas_limit": 20_999}, "gas_limit"),
        (_token, {"amount": 0}, "token amount"),
        (_token, {"amount": 2**256}, "token amount"),
    ],
)
def test_refusals(sign: Callable[..., object], changes: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidTransaction, match=says):
        sign(**changes)


def test_fee_caps_are_checked() -> None:
    with pytest.raises(InvalidTransaction, match="exceeds the fee cap"):
        EthFees(max_fee_per_gas=1, max_priority_fee_per_gas=2)
    with pytest.raises(InvalidTransaction, match="max_fee_per_gas"):
        EthFees(max_fee_per_gas=-1, max_priority_fee_per_gas=0)


def test_amounts_must_be_ints() -> None:
    with pytest.raises(TypeError):
        sign_eth_transfer(KEY, network=NETWORK, nonce=0, to=RECIPIENT, value_wei=True, fees=FEES)
    with pytest.raises(TypeError):
        erc20_transfer_calldata(RECIPIENT, 1.5)  # type: ignore[arg-type]
