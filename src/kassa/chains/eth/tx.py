"""Ethereum payouts: EIP-1559 transfers of ETH and ERC-20 tokens, built and signed offline.

Design:
* One signed transaction per payout, fully determined by its inputs: chain id (EIP-155 replay
  protection), sender nonce, fee caps, gas limit, recipient and amount. The result carries the
  raw bytes to broadcast, the transaction hash, and the *spend identity* (sender, nonce) the
  payout worker stores before broadcasting: a replacement must reuse that nonce, so at most one
  of the versions can ever be mined.
* ERC-20 transfers call ``transfer(address,uint256)`` on the token with no ETH attached; the
  calldata is ABI-encoded here (selector ``a9059cbb``, two 32-byte words).
* Refused before signing, because once broadcast they cannot be taken back: amounts out of
  range, a payout to the zero address (burnt) or to the token contract itself (stuck in most
  tokens), a priority fee above the fee cap, a gas limit below the 21 000 floor.
* eth_account does the RLP encoding and signing (secp256k1, RFC6979, low-S).
Amounts are ``int`` wei or token minor units; fees are ``int`` wei per gas.
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve
from eth_account import Account
from eth_hash.auto import keccak

from kassa.chains.errors import InvalidTransaction
from kassa.chains.eth.address import EthAddress, eth_address_for_public_key
from kassa.chains.network import EthNetwork

__all__ = [
    "DEFAULT_ERC20_GAS_LIMIT",
    "ERC20_TRANSFER_SELECTOR",
    "NATIVE_TRANSFER_GAS",
    "EthFees",
    "SignedEthTransaction",
    "erc20_transfer_calldata",
    "eth_address_for_key",
    "sign_erc20_transfer",
    "sign_eth_transfer",
]

NATIVE_TRANSFER_GAS = 21_000
"""Intrinsic gas of a plain value transfer to an account without code."""
DEFAULT_ERC20_GAS_LIMIT = 100_000
"""A cap, not a price: unused gas is refunded. USDT's transfer uses about 41–63k."""
ERC20_TRANSFER_SELECTOR = keccak(b"transfer(address,uint256)")[:4]
_UINT256_MAX = 2**256 - 1


def _check_int(name: str, value: object, low: int, high: int = _UINT256_MAX) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidTransaction(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class EthFees:
    """EIP-1559 fee caps in wei per gas."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def __post_init__(self) -> None:
        _check_int("max_fee_per_gas", self.max_fee_per_gas, 0)
        _check_int("max_priority_fee_per_gas", self.max_priority_fee_per_gas, 0)
        if self.max_priority_fee_per_gas > self.max_fee_per_gas:
            raise InvalidTransaction(
                f"the priority fee ({self.max_priority_fee_per_gas} wei/gas) exceeds the fee "
                f"cap ({self.max_fee_per_gas} wei/gas)"
            )


@dataclass(frozen=True, slots=True)
class SignedEthTransaction:
    """A signed EIP-1559 transaction, ready to broadcast and to store before broadcasting."""

    raw: bytes
    """Bytes for ``eth_sendRawTransaction``."""
    hash: str
    """0x-prefixed keccak256 of ``raw``: the transaction id."""
    sender: EthAddress
    nonce: int
    chain_id: int
    to: EthAddress
    """The recipient of a native transfer, the token contract of an ERC-20 transfer."""
    value: int
    """Wei sent along (0 for ERC-20 transfers)."""
    data: bytes
    gas_limit: int
    fees: EthFees

    @property
    def max_cost(self) -> int:
        """Wei the sender must hold: value plus the gas limit at the fee cap."""
        return self.value + self.gas_limit * self.fees.max_fee_per_gas


def eth_address_for_key(key: coincurve.PrivateKey) -> EthAddress:
    """The Ethereum address that ``key`` sends from."""
    return eth_address_for_public_key(key.public_key.format(compressed=False))


def erc20_transfer_calldata(to: EthAddress, amount: int) -> bytes:
    """ABI calldata of ``transfer(to, amount)``: selector, address word, uint256 word."""
    _check_int("a token amount", amount, 1)
    return ERC20_TRANSFER_SELECTOR + bytes(12) + to.raw + amount.to_bytes(32, "big")


def _sign(
    key: coincurve.PrivateKey,
    *,
    network: EthNetwork,
    nonce: int,
    to: EthAddress,
    value: int,
    data: bytes,
    gas_limit: int,
    fees: EthFees,
) -> SignedEthTransaction:
    _check_int("nonce", nonce, 0, 2**64 - 2)  # EIP-2681
    _check_int("gas_limit", gas_limit, NATIVE_TRANSFER_GAS, 2**64 - 1)
    if to.is_zero:
        raise InvalidTransaction("refusing to send to the zero address: whatever is sent is burnt")
    signed = Account.sign_transaction(
        {
            "type": 2,
            "chainId": network.chain_id,
            "nonce": nonce,
            "to": to.text,
            "value": value,
            "data": data,
            "gas": gas_limit,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
            "accessList": [],
        },
        key.secret,
    )
    raw = bytes(signed.raw_transaction)
    return SignedEthTransaction(
        raw=raw,
        hash="0x" + keccak(raw).hex(),
        sender=eth_address_for_key(key),
        nonce=nonce,
        chain_id=network.chain_id,
        to=to,
        value=value,
        data=data,
        gas_limit=gas_limit,
        fees=fees,
    )


def sign_eth_transfer(
    key: coincurve.PrivateKey,
    *,
    network: EthNetwork,
    nonce: int,
    to: EthAddress,
    value_wei: int,
    fees: EthFees,
    gas_limit: int = NATIVE_TRANSFER_GAS,
) -> SignedEthTransaction:
    """Sign a transfer of ``value_wei`` from ``key``'s address to ``to``."""
    _check_int("value_wei", value_wei, 1)
    return _sign(
        key,
        network=network,
        nonce=nonce,
        to=to,
        value=value_wei,
        data=b"",
        gas_limit=gas_limit,
        fees=fees,
    )


def sign_erc20_transfer(
    key: coincurve.PrivateKey,
    *,
    network: EthNetwork,
    nonce: int,
    token: EthAddress,
    to: EthAddress,
    amount: int,
    fees: EthFees,
    gas_limit: int = DEFAULT_ERC20_GAS_LIMIT,
) -> SignedEthTransaction:
    """Sign a call of ``token.transfer(to, amount)`` (``amount`` in the token's minor units)."""
    if to.is_zero:
        raise InvalidTransaction("refusing to send tokens to the zero address: they are burnt")
    if to == token:
        raise InvalidTransaction(
            "refusing to send tokens to the token contract itself: most tokens keep them forever"
        )
    return _sign(
        key,
        network=network,
        nonce=nonce,
        to=token,
        value=0,
        data=erc20_transfer_calldata(to, amount),
        gas_limit=gas_limit,
        fees=fees,
    )
