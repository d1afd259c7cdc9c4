"""TRON addresses: Base58Check of ``0x41`` ‖ 20 bytes.

Design: the canonical form is the ``T…`` Base58Check string. The hex form ``41`` + 40 hex digits
(what java-tron's non-``visible`` API returns) is accepted and normalised to Base58. The 20 bytes
after ``0x41`` are the EVM address the TVM sees, which is how TRC-20 Transfer logs name accounts.
``0x…`` Ethereum-style text is refused: on a payout form it almost always means the wrong chain.
All TRON networks share the prefix, so parsing takes no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eth_hash.auto import keccak

from kassa.chains import _sniff
from kassa.chains._base58 import ALPHABET, Base58Error, b58check_decode, b58check_encode
from kassa.chains._text import check_address_text, quoted
from kassa.chains.errors import AddressProblem, InvalidAddress
from kassa.chains.network import Chain

__all__ = ["TRON_PREFIX", "TronAddress", "parse_tron_address", "tron_address_for_public_key"]

TRON_PREFIX = 0x41
_HEX_RE = re.compile(r"41[0-9a-fA-F]{40}", re.ASCII)
_BASE58_SET = frozenset(ALPHABET)


@dataclass(frozen=True, slots=True)
class TronAddress:
    """A valid TRON address; ``text`` is the ``T…`` Base58Check form."""

    text: str
    raw: bytes
    """The 21 address bytes, starting with 0x41."""

    def __post_init__(self) -> None:
        if len(self.raw) != 21 or self.raw[0] != TRON_PREFIX:
            raise ValueError("a TRON address is 21 bytes starting with 0x41")

    @classmethod
    def from_bytes(cls, raw: bytes) -> TronAddress:
        """From the 21-byte form (``41`` ‖ 20 bytes) or the 20-byte EVM form."""
        if len(raw) == 20:
            raw = bytes([TRON_PREFIX]) + raw
        return cls(b58check_encode(bytes(raw)), bytes(raw))

    @property
    def chain(self) -> Chain:
        return Chain.TRON

    @property
    def hex(self) -> str:
        """The ``41…`` hex form java-tron uses when ``visible`` is false."""
        return self.raw.hex()

    @property
    def is_zero(self) -> bool:
        """The zero address (T9yD14Nj9j7xAB4dbGeiX9h8unkKHxuWwb): what is sent to it is burnt."""
        return self.raw[1:] == bytes(20)

    @property
    def evm_bytes(self) -> bytes:
        """The 20-byte address the TVM (and TRC-20 event topics) use."""
        return self.raw[1:]

    def __str__(self) -> str:
        return self.text


def tron_address_for_public_key(public_key: bytes) -> TronAddress:
    """The address of a secp256k1 public key (uncompressed, 64 or 65 bytes), as on Ethereum
    but with the 0x41 prefix."""
    if len(public_key) == 65 and public_key[0] == 4:
        public_key = public_key[1:]
    if len(public_key) != 64:
        raise ValueError("a TRON address needs the uncompressed public key (64 or 65 bytes)")
    return TronAddress.from_bytes(keccak(public_key)[-20:])


def _refuse(text: str, reason: str, problem: AddressProblem) -> InvalidAddress:
    return InvalidAddress(f"{quoted(text)} is not a valid TRON address: {reason}", problem=problem)


def parse_tron_address(text: str) -> TronAddress:
    """Parse ``text`` (``T…`` or ``41…`` hex) as a TRON address; raise `InvalidAddress`."""
    check_address_text(text, "TRON address")
    if _HEX_RE.fullmatch(text):
        return TronAddress.from_bytes(bytes.fromhex(text))
    other = _sniff.other_chain(text, Chain.TRON)
    if other is not None:
        raise _refuse(text, f"it is an {other.display_name} address", AddressProblem.WRONG_CHAIN)
    if text.startswith("0x"):
        raise _refuse(
            text,
            "TRON addresses start with T (or 41 in hex), not 0x",
            AddressProblem.BAD_FORMAT,
        )
    if not set(text) <= _BASE58_SET:
        raise _refuse(
            text,
            "it contains characters that Base58 never uses (0, O, I, l or punctuation)",
            AddressProblem.BAD_CHARACTER,
        )
    try:
        payload = b58check_decode(text)
    except Base58Error as error:
        if error.kind is Base58Error.Kind.BAD_CHECKSUM:
            raise _refuse(
                text, "the checksum does not match (a typo?)", AddressProblem.BAD_CHECKSUM
            ) from None
        raise _refuse(text, "it is too short", AddressProblem.BAD_LENGTH) from None
    if len(payload) != 21:
        raise _refuse(
            text,
            f"it decodes to {len(payload)} bytes; a TRON address has 21",
            AddressProblem.BAD_LENGTH,
        )
    if payload[0] != TRON_PREFIX:
        raise _refuse(
            text,
            f"it starts with byte 0x{payload[0]:02x}; TRON addresses start with 0x41 (T…)",
            AddressProblem.UNKNOWN_PREFIX,
        )
    return TronAddress(text, payload)
