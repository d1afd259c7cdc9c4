"""Ethereum addresses with EIP-55 checksums.

Design: text is ``0x`` and 40 hex digits. All-lower-case and all-upper-case hex carry no
checksum (EIP-55 keeps them valid) and are accepted; mixed case *is* a checksum and must match,
since a mismatch is how EIP-55 catches a typo. Every accepted address is normalised to its
checksummed form, which is what Kassa stores and shows. The same addresses serve ETH and ERC-20
tokens on every EVM network, so parsing takes no network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from eth_hash.auto import keccak

from kassa.chains import _sniff
from kassa.chains._text import check_address_text, quoted
from kassa.chains.errors import AddressProblem, InvalidAddress
from kassa.chains.network import Chain

__all__ = ["EthAddress", "checksum_encode", "eth_address_for_public_key", "parse_eth_address"]

_HEX_RE = re.compile(r"[0-9a-fA-F]*", re.ASCII)


def checksum_encode(raw: bytes) -> str:
    """The EIP-55 spelling of a 20-byte address: a hex letter is upper case where the
    matching nibble of keccak256(lower-case hex) is 8 or more."""
    if len(raw) != 20:
        raise ValueError(f"an Ethereum address is 20 bytes, got {len(raw)}")
    lower = raw.hex()
    digest = keccak(lower.encode()).hex()
    return "0x" + "".join(
        ch.upper() if int(nibble, 16) >= 8 else ch
        for ch, nibble in zip(lower, digest, strict=False)
    )


@dataclass(frozen=True, slots=True)
class EthAddress:
    """A valid Ethereum address; ``text`` is the EIP-55 checksummed form."""

    text: str
    raw: bytes
    """The 20 address bytes."""

    @classmethod
    def from_bytes(cls, raw: bytes) -> EthAddress:
        return cls(checksum_encode(raw), bytes(raw))

    @property
    def chain(self) -> Chain:
        return Chain.ETH

    @property
    def is_zero(self) -> bool:
        """The zero address: mints come from it, and what is sent to it is burnt."""
        return self.raw == bytes(20)

    def __str__(self) -> str:
        return self.text


def eth_address_for_public_key(public_key: bytes) -> EthAddress:
    """The address of a secp256k1 public key: the last 20 bytes of keccak256(X ‖ Y).

    Takes the 65-byte uncompressed SEC1 form (``04 ‖ X ‖ Y``) or the bare 64 bytes.
    """
    if len(public_key) == 65 and public_key[0] == 4:
        public_key = public_key[1:]
    if len(public_key) != 64:
        raise ValueError("an Ethereum address needs the uncompressed public key (64 or 65 bytes)")
    return EthAddress.from_bytes(keccak(public_key)[-20:])


def _refuse(text: str, reason: str, problem: AddressProblem) -> InvalidAddress:
    return InvalidAddress(
        f"{quoted(text)} is not a valid Ethereum address: {reason}", problem=problem
    )


def parse_eth_address(text: str) -> EthAddress:
    """Parse ``text`` as an Ethereum address; raise `InvalidAddress` saying why not."""
    check_address_text(text, "Ethereum address")
    other = _sniff.other_chain(text, Chain.ETH)
    if other is not None:
        raise _refuse(text, f"it is a {other.display_name} address", AddressProblem.WRONG_CHAIN)
    if not text.startswith("0x"):
        if len(text) == 40 and _HEX_RE.fullmatch(text):
            reason = "it lacks the 0x prefix"
        else:
            reason = "an Ethereum address starts with 0x followed by 40 hex digits"
        raise _refuse(text, reason, AddressProblem.BAD_FORMAT)
    digits = text[2:]
    if not _HEX_RE.fullmatch(digits):
        raise _refuse(
            text, "after 0x only hex digits (0-9, a-f) may follow", AddressProblem.BAD_CHARACTER
        )
    if len(digits) != 40:
        raise _refuse(
            text,
            f"it has {len(digits)} hex digits after 0x; an address has 40",
            AddressProblem.BAD_LENGTH,
        )
    address = EthAddress.from_bytes(bytes.fromhex(digits))
    if digits not in (digits.lower(), digits.upper()) and text != address.text:
        raise _refuse(
            text,
            "its mix of upper- and lower-case letters does not match the EIP-55 checksum (a typo?)",
            AddressProblem.BAD_CHECKSUM,
        )
    return address
