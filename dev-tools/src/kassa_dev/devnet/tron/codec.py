"""Byte-level helpers shared by the simulator: TRON addresses, hashing, ABI words.

A TRON address is kept internally as its 21 raw bytes (`0x41` + the 20-byte EVM address).
java-tron speaks two spellings on the wire: base58check (`T…`, when a request says
`visible: true`) and hex (`41…`, the default). The simulator accepts either spelling wherever an
address is read, and writes the one the request asked for.
"""

from __future__ import annotations

import hashlib

import base58
from Crypto.Hash import keccak

# base58 and pycryptodome (`Crypto`) come with tronpy; they are used directly so that importing
# the simulator's light modules (`config` for the genesis key) does not import all of tronpy.

ADDRESS_PREFIX = 0x41
ADDRESS_LENGTH = 21
ZERO_ADDRESS = bytes([ADDRESS_PREFIX]) + bytes(20)


class AddressError(ValueError):
    """A string that is neither a valid base58check nor a valid `41…` hex TRON address."""


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def parse_address(value: object) -> bytes:
    """The 21 raw bytes of an address given as base58check or as `41…` hex."""
    if not isinstance(value, str) or not value:
        raise AddressError(f"invalid address {value!r}")
    if value.startswith("T") and len(value) == 34:
        try:
            raw = base58.b58decode_check(value)
        except ValueError as error:
            raise AddressError(f"invalid base58check address {value!r}") from error
    elif len(value) == 2 * ADDRESS_LENGTH:
        try:
            raw = bytes.fromhex(value)
        except ValueError as error:
            raise AddressError(f"invalid hex address {value!r}") from error
    else:
        raise AddressError(f"invalid address {value!r}")
    if len(raw) != ADDRESS_LENGTH or raw[0] != ADDRESS_PREFIX:
        raise AddressError(f"invalid address {value!r}")
    return raw


def to_base58(address: bytes) -> str:
    return base58.b58encode_check(address).decode()


def render_address(address: bytes, visible: bool) -> str:
    """The wire spelling java-tron uses: base58check when `visible`, else `41…` hex."""
    return to_base58(address) if visible else address.hex()


def address_from_public_key(public_key_uncompressed: bytes) -> bytes:
    """TRON address of a secp256k1 public key (65-byte uncompressed form, `04` first)."""
    return bytes([ADDRESS_PREFIX]) + keccak256(public_key_uncompressed[1:])[-20:]


def evm_word_to_address(word: bytes) -> bytes:
    """An ABI `address` argument (a 32-byte word) as a TRON address: the low 20 bytes."""
    return bytes([ADDRESS_PREFIX]) + word[-20:]


def address_to_evm_word(address: bytes) -> bytes:
    return bytes(12) + address[1:]


def uint256_word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def abi_string(value: str) -> bytes:
    """ABI encoding of a single dynamic `string` return value (offset, length, padded data)."""
    data = value.encode()
    padded = data + bytes(-len(data) % 32)
    return uint256_word(32) + uint256_word(len(data)) + padded


def hex_utf8(message: str) -> str:
    """java-tron sends error messages as the hex of their UTF-8 bytes."""
    return message.encode().hex()


def parse_hex(value: object, *, field: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a hex string")
    text = value[2:] if value.startswith(("0x", "0X")) else value
    try:
        return bytes.fromhex(text)
    except ValueError as error:
        raise ValueError(f"{field} is not valid hex") from error
